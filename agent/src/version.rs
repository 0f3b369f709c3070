//! The agent's version, in the binary exactly once: `otto_proto::AGENT_VERSION_TAG`, the
//! version, a NUL. The server reads a binary's version from those bytes without running it; the
//! agent reads the same bytes at run time (never a copy the compiler folded in), so what it
//! reports is what the server read.

/// The tag, the version (Cargo's), and the NUL that ends it.
static TAGGED: &str = concat!("\0otto-agent-version:", env!("CARGO_PKG_VERSION"), "\0");

/// The tag's length: a constant, so that the tag itself appears nowhere else in the binary.
const TAG_LEN: usize = otto_proto::AGENT_VERSION_TAG.len();

/// The version the agent reports (heartbeats, `--version`, its log), read out of [`TAGGED`].
pub fn version() -> &'static str {
    // Opaque to the optimiser: the bytes are read from the binary as it is on disk.
    let tagged = core::hint::black_box(TAGGED).as_bytes();
    let text = tagged.get(TAG_LEN..).unwrap_or_default();
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    core::str::from_utf8(text.get(..end).unwrap_or_default()).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_the_protocols_and_the_version_cargos() {
        assert!(TAGGED.starts_with(otto_proto::AGENT_VERSION_TAG));
        assert_eq!(version(), env!("CARGO_PKG_VERSION"));
    }
}
