//! The SSH profile: the only algorithms an Otto server and agent negotiate, by their SSH names.
//!
//! Both sides offer exactly these, so a connection either uses them or fails at the key
//! exchange. The lists are in order of preference (each has one real algorithm; the key
//! exchange list adds the extension markers of RFC 8308 and OpenSSH's strict key exchange,
//! which differ by role). This crate names the algorithms only; each side turns the names into
//! its SSH library's types.

/// Key exchange: `curve25519-sha256` (RFC 8731).
pub const KEX: &str = "curve25519-sha256";
/// Key exchange marker a client sends: it understands extension negotiation (RFC 8308).
pub const KEX_EXT_INFO_CLIENT: &str = "ext-info-c";
/// Key exchange marker a server sends: it understands extension negotiation (RFC 8308).
pub const KEX_EXT_INFO_SERVER: &str = "ext-info-s";
/// Key exchange marker a client sends: OpenSSH's strict key exchange (the Terrapin fix).
pub const KEX_STRICT_CLIENT: &str = "kex-strict-c-v00@openssh.com";
/// Key exchange marker a server sends: OpenSSH's strict key exchange (the Terrapin fix).
pub const KEX_STRICT_SERVER: &str = "kex-strict-s-v00@openssh.com";
/// Host and user keys: Ed25519.
pub const HOST_KEY: &str = "ssh-ed25519";
/// Cipher: ChaCha20-Poly1305, which authenticates by itself.
pub const CIPHER: &str = "chacha20-poly1305@openssh.com";
/// MAC: negotiated because SSH requires one, never used with [`CIPHER`].
pub const MAC: &str = "hmac-sha2-256-etm@openssh.com";
/// Compression: none.
pub const COMPRESSION: &str = "none";

/// The key exchange list the client (the Otto server) offers, in order.
pub const CLIENT_KEX: [&str; 3] = [KEX, KEX_EXT_INFO_CLIENT, KEX_STRICT_CLIENT];
/// The key exchange list the server (the Otto agent) offers, in order.
pub const SERVER_KEX: [&str; 3] = [KEX, KEX_EXT_INFO_SERVER, KEX_STRICT_SERVER];
