//! Encoding and decoding speed of the two frames an agent sends most: a heartbeat response and a
//! 1 KiB chunk of action output. `cargo bench -p otto-proto`.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otto_proto::{
    ActionOutput, Decoder, HeartbeatResponse, HostFacts, Item, MAX_BODY_LEN, Message, Stream,
    encode,
};
use std::hint::black_box;

fn heartbeat() -> Message<'static> {
    Message::HeartbeatResponse(HeartbeatResponse {
        agent_version: "0.1.0",
        nonce: 0x1234_5678_9abc_def0,
        facts: HostFacts {
            hostname: "gw-lab-01",
            kernel_name: "Linux",
            kernel_version: "5.15.167",
            arch: "mips",
            distribution_name: "OpenWrt",
            distribution_version: "23.05.5",
            uptime_secs: 1_234_567,
            load_centi: [12, 8, 5],
            mem_total_kib: 124_000,
            mem_available_kib: 80_000,
            model: "TP-Link Archer C7 v5",
            big_endian: true,
            flash_total_kib: 7_680,
            flash_free_kib: 5_120,
        },
    })
}

fn bench_message(c: &mut Criterion, name: &str, message: &Message<'_>) {
    let mut wire = [0u8; MAX_BODY_LEN];
    let len = encode(message, &mut wire).expect("frame fits");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encode(black_box(message), black_box(&mut wire)).expect("frame fits"))
    });
    let frame = wire[..len].to_vec();
    let mut decoder = Decoder::<MAX_BODY_LEN>::new();
    group.bench_function("decode", |b| {
        b.iter(|| {
            let decoded = decoder.decode(black_box(&frame)).expect("valid frame");
            assert!(matches!(decoded.item, Some(Item::Frame(_))));
            decoded.consumed
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_message(c, "heartbeat_response", &heartbeat());
    let chunk = [b'x'; 1024];
    let output = Message::ActionOutput(ActionOutput {
        action: 42,
        stream: Stream::Stdout,
        data: &chunk,
    });
    bench_message(c, "action_output_1k", &output);
}

criterion_group!(benches, codec);
criterion_main!(benches);
