//! `otto-agent`: the Otto agent.

fn main() {
    println!(
        "otto-agent {} (protocol {})",
        env!("CARGO_PKG_VERSION"),
        otto_proto::PROTOCOL_VERSION
    );
}
