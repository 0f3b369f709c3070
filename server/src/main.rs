//! `otto-server`: the Otto server.

fn main() {
    println!(
        "otto-server {} (protocol {})",
        env!("CARGO_PKG_VERSION"),
        otto_proto::PROTOCOL_VERSION
    );
}
