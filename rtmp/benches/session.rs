//! The RTMP input path under audio load: 20 ms Speex messages (70-byte frames, as
//! Flash sends at quality 8) through a connected session, from bytes to
//! `SessionEvent::Audio`. Reports time per message (criterion) and bytes and
//! allocations per message (a counting allocator), printed after the run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{black_box, criterion_group, Criterion, Throughput};
use sono_rtmp::chunk::ChunkEncoder;
use sono_rtmp::fuzzing::connected_preamble;
use sono_rtmp::message::{command_payload, type_id};
use sono_rtmp::{AmfValue, ObjectEncoding, ServerSession, SessionConfig, SessionEvent};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: usize = 1000;

/// A session that has connected, created stream 1 and publishes on it.
fn publishing_session() -> ServerSession {
    let mut s = ServerSession::new(SessionConfig::default());
    let mut wire = connected_preamble();
    let mut e = ChunkEncoder::default();
    let create = command_payload(
        ObjectEncoding::Amf0,
        &["createStream".into(), 2.0.into(), AmfValue::Null],
    );
    e.encode(3, 0, type_id::COMMAND_AMF0, 0, &create, &mut Vec::new());
    s.handle_input(&wire).expect("connect");
    while let Some(ev) = s.poll_event() {
        if matches!(ev, SessionEvent::ConnectRequested(_)) {
            s.accept_connect(vec![]).expect("accept");
        }
    }
    wire.clear();
    let mut e = ChunkEncoder::default();
    e.encode(3, 0, type_id::COMMAND_AMF0, 0, &create, &mut wire);
    let publish = command_payload(
        ObjectEncoding::Amf0,
        &[
            "publish".into(),
            0.0.into(),
            AmfValue::Null,
            "mic".into(),
            "live".into(),
        ],
    );
    e.encode(8, 0, type_id::COMMAND_AMF0, 1, &publish, &mut wire);
    s.handle_input(&wire).expect("publish");
    while s.poll_event().is_some() {}
    s.take_output();
    s
}

/// 1000 audio messages as Flash sends them: one 70-byte Speex frame each, 20 ms apart.
fn audio_wire() -> Vec<u8> {
    let mut e = ChunkEncoder::default();
    let mut wire = Vec::new();
    let mut payload = vec![0xB2u8];
    payload.extend((0..70u8).map(|i| i.wrapping_mul(37)));
    for i in 0..MESSAGES {
        e.encode(4, (i * 20) as u32, type_id::AUDIO, 1, &payload, &mut wire);
    }
    wire
}

fn feed(s: &mut ServerSession, wire: &[u8]) -> usize {
    let mut n = 0;
    // TCP delivers about 16 KiB per read under load; so does the actor's buffer.
    for read in wire.chunks(16 * 1024) {
        s.handle_input(read).expect("audio input");
        while let Some(ev) = s.poll_event() {
            if let SessionEvent::Audio { tag, .. } = ev {
                n += black_box(tag.data.len()).min(1);
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let wire = audio_wire();
    let mut g = c.benchmark_group("rtmp_input");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("speex_20ms_audio_messages", |b| {
        let mut s = publishing_session();
        b.iter(|| assert_eq!(feed(&mut s, &wire), MESSAGES));
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();

    let wire = audio_wire();
    let mut s = publishing_session();
    feed(&mut s, &wire); // warm up buffers
    let rounds = 20;
    let (a0, b0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED.load(Ordering::Relaxed),
    );
    for _ in 0..rounds {
        feed(&mut s, &wire);
    }
    let (a1, b1) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED.load(Ordering::Relaxed),
    );
    let n = (rounds * MESSAGES) as f64;
    println!(
        "rtmp_input/speex_20ms_audio_messages: {:.4} allocations and {:.2} bytes allocated per message ({} bytes on the wire each)",
        (a1 - a0) as f64 / n,
        (b1 - b0) as f64 / n,
        wire.len() / MESSAGES
    );
}
