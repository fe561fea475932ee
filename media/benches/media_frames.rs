//! What one 20 ms frame costs in each codec, the resampler and each whole
//! pipeline direction (criterion), and, printed first, what ffmpeg takes for
//! the same codecs on the same machine in the same run (`ffmpeg -benchmark`
//! over a minute of audio, user CPU divided by the frames), so the two can
//! be compared. Run: `cargo bench -p sono-media --bench media_frames`.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sono_media::codec::{ClientCodec, SipCodec, SipDecoder, SipEncoder};
use sono_media::downlink::{Downlink, DownlinkConfig};
use sono_media::jitter_buffer::JitterBuffer;
use sono_media::resampler::Resampler;
use sono_media::rtp_sender::RtpSender;
use sono_media::speex::{SpeexWbDecoder, SpeexWbEncoder};
use sono_media::uplink::{Uplink, UplinkConfig};

/// One second of speech-like 16 kHz audio: two tones and a little noise.
fn speech(rate: u32, frames: usize) -> Vec<i16> {
    let n = rate as usize / 50 * frames;
    let mut noise = 12345u32;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((t * 2.0 * std::f64::consts::PI * 220.0).sin() * 5000.0
                + (t * 2.0 * std::f64::consts::PI * 1370.0).sin() * 2000.0
                + f64::from((noise >> 16) as i16) / 40.0) as i16
        })
        .collect()
}

fn speex_frames(n: usize) -> Vec<Vec<u8>> {
    let mut enc = SpeexWbEncoder::new(8, 2);
    speech(16_000, n)
        .chunks(320)
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p);
            p
        })
        .collect()
}

/// ffmpeg's user CPU per 20 ms frame for `args`, over 60 s of audio.
fn ffmpeg_per_frame(input: &[&str], codec: &[&str]) -> Option<f64> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-benchmark", "-y"])
        .args(input)
        .args(codec)
        .args(["-f", "null", "-"]);
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let utime = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("utime="))?
        .trim_end_matches('s')
        .parse::<f64>()
        .ok()?;
    Some(utime / 3000.0 * 1e6)
}

fn ffmpeg_reference() {
    let dir = std::env::temp_dir().join(format!("sono-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let wav = dir.join("tone.wav");
    let speex = dir.join("speex.flv");
    let nelly = dir.join("nelly.flv");
    let s = |p: &std::path::Path| p.display().to_string();
    let ok = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("sine=frequency=440:sample_rate=16000:duration=60")
        .arg(&wav)
        .status()
        .is_ok_and(|st| st.success());
    if !ok {
        eprintln!("ffmpeg is missing: no reference figures (install ffmpeg)");
        return;
    }
    let quiet = |args: &[&str]| {
        let _ = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .status();
    };
    quiet(&[
        "-i",
        &s(&wav),
        "-c:a",
        "libspeex",
        "-cbr_quality",
        "8",
        &s(&speex),
    ]);
    quiet(&["-i", &s(&wav), "-c:a", "nellymoser", &s(&nelly)]);
    let w = s(&wav);
    let rows = [
        (
            "speex wb encode (q8)",
            ffmpeg_per_frame(&["-i", &w], &["-c:a", "libspeex", "-cbr_quality", "8"]),
        ),
        (
            "speex wb decode",
            ffmpeg_per_frame(&["-c:a", "libspeex", "-i", &s(&speex)], &[]),
        ),
        (
            "nellymoser encode (16 kHz)",
            ffmpeg_per_frame(&["-i", &w], &["-c:a", "nellymoser"]),
        ),
        (
            "nellymoser decode (16 kHz)",
            ffmpeg_per_frame(&["-i", &s(&nelly)], &[]),
        ),
        (
            "g722 encode",
            ffmpeg_per_frame(&["-i", &w], &["-c:a", "g722"]),
        ),
        (
            "pcm_mulaw encode (8 kHz)",
            ffmpeg_per_frame(&["-i", &w], &["-ar", "8000", "-c:a", "pcm_mulaw"]),
        ),
    ];
    eprintln!(
        "ffmpeg on this machine, user CPU per 20 ms frame (whole process, file I/O included):"
    );
    for (name, figure) in rows {
        match figure {
            Some(us) => eprintln!("  ffmpeg {name:<28} {us:>8.2} µs"),
            None => eprintln!("  ffmpeg {name:<28}     (failed)"),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn codecs(c: &mut Criterion) {
    ffmpeg_reference();
    let pcm16 = speech(16_000, 50);
    let pcm8 = speech(8000, 50);
    let frames = speex_frames(50);
    let mut g = c.benchmark_group("codec per 20 ms frame");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);

    let mut enc = SpeexWbEncoder::new(8, 2);
    let mut i = 0;
    g.bench_function("speex wb encode q8 c2", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(80);
            enc.encode(black_box(&pcm16[(i % 50) * 320..][..320]), &mut out);
            i += 1;
            out
        })
    });
    let mut dec = SpeexWbDecoder::new();
    g.bench_function("speex wb decode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(320);
            dec.decode(black_box(&frames[i % 50]), &mut out);
            i += 1;
            out
        })
    });
    for codec in [SipCodec::G722, SipCodec::Pcmu] {
        let pcm = if codec == SipCodec::G722 {
            &pcm16
        } else {
            &pcm8
        };
        let n = pcm.len() / 50;
        let mut enc = SipEncoder::new(codec, 8, 3);
        g.bench_function(format!("{} encode", codec.name()), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(160);
                enc.encode(black_box(&pcm[(i % 50) * n..][..n]), &mut out);
                i += 1;
                out
            })
        });
        let mut payload = Vec::new();
        SipEncoder::new(codec, 8, 3).encode(&pcm[..n], &mut payload);
        let mut dec = SipDecoder::new(codec);
        g.bench_function(format!("{} decode", codec.name()), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(320);
                dec.decode(black_box(&payload), &mut out);
                out
            })
        });
    }
    // Nellymoser works in blocks of 256 samples (16 ms at 16 kHz): the
    // figures are per block; × 1.25 gives 20 ms at 16 kHz.
    let mut nelly = sono_media::nellymoser::NellymoserEncoder::new();
    let mut blocks = Vec::new();
    nelly.encode(&pcm16, &mut blocks);
    let mut enc = sono_media::nellymoser::NellymoserEncoder::new();
    g.bench_function("nellymoser encode (256 samples)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(64);
            enc.encode(black_box(&pcm16[(i % 60) * 256..][..256]), &mut out);
            i += 1;
            out
        })
    });
    let mut dec = sono_media::nellymoser::NellymoserDecoder::new();
    g.bench_function("nellymoser decode (256 samples)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(256);
            dec.decode(black_box(&blocks[(i % 60) * 64..][..64]), &mut out);
            i += 1;
            out
        })
    });
    for (from, to) in [(16_000, 8000), (8000, 16_000), (44_100, 16_000)] {
        let input = speech(from, 50);
        let n = input.len() / 50;
        let mut r = Resampler::new(from, to).expect("a resampler");
        let mut out = Vec::with_capacity(1024);
        g.bench_function(format!("resample {from} to {to}"), |b| {
            b.iter(|| {
                out.clear();
                r.process(black_box(&input[(i % 50) * n..][..n]), &mut out);
                i += 1;
            })
        });
    }
    g.finish();
}

fn pipelines(c: &mut Criterion) {
    let frames = speex_frames(50);
    let mut g = c.benchmark_group("pipeline per 20 ms frame");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    for (codec, pt) in [
        (SipCodec::Pcmu, 0),
        (SipCodec::G722, 9),
        (SipCodec::SpeexWb, 97),
    ] {
        let mut up = Uplink::new(
            UplinkConfig {
                codec,
                payload_type: pt,
                telephone_event: Some(101),
                ptime_ms: 20,
                speex_quality: 8,
                speex_complexity: 2,
                dtmf_duration_ms: 100,
                dtmf_pause_ms: 60,
            },
            RtpSender::new(1, 2, 3),
        );
        let mut clock = 0u32;
        let mut out = Vec::with_capacity(4);
        g.bench_function(format!("up: client speex to {}", codec.name()), |b| {
            b.iter(|| {
                out.clear();
                let f = &frames[(clock / 20) as usize % 50];
                let _ = up.client_audio(ClientCodec::SpeexWb, clock, black_box(f), &mut out);
                clock = clock.wrapping_add(20);
            })
        });

        // Down: a steady peer; each iteration is one packet in and one tick.
        let mut enc = SipEncoder::new(codec, 8, 3);
        let pcm = speech(codec.sample_rate(), 50);
        let n = pcm.len() / 50;
        let mut sender = RtpSender::new(9, 0, 0);
        let datagrams: Vec<Vec<u8>> = (0..50)
            .map(|k| {
                let mut payload = Vec::new();
                if codec == SipCodec::SpeexWb {
                    payload = frames[k].clone();
                } else {
                    enc.encode(&pcm[k * n..][..n], &mut payload);
                }
                let mut d = Vec::new();
                sender.audio(pt, &payload, codec.rtp_ticks(n), &mut d);
                d
            })
            .collect();
        let mut down = Downlink::new(DownlinkConfig {
            codec,
            payload_type: pt,
            telephone_event: Some(101),
            ptime_ms: 20,
            jitter_min: Duration::from_millis(20),
            jitter_max: Duration::from_millis(200),
            speex_quality: 8,
            speex_complexity: 2,
            silence_dbov: None,
        });
        let t0 = Instant::now();
        let mut k = 0u32;
        let mut to_client = Vec::with_capacity(4);
        g.bench_function(format!("down: {} to client speex", codec.name()), |b| {
            b.iter(|| {
                // Sequence numbers and timestamps run on across the 50
                // prepared packets by rewriting them.
                let mut d = datagrams[k as usize % 50].clone();
                d[2..4].copy_from_slice(&(k as u16).to_be_bytes());
                d[4..8].copy_from_slice(&(k * codec.rtp_ticks(n)).to_be_bytes());
                let now = t0 + Duration::from_millis(20 * u64::from(k));
                if let Ok(p) = sono_media::rtp::RtpPacket::parse(&d) {
                    down.rtp(now, &p);
                }
                to_client.clear();
                down.tick(now, &mut to_client);
                k += 1;
            })
        });
    }
    g.finish();
}

/// The jitter buffer alone, as a network delivers: each 20 ms packet late by
/// 0–30 ms (a fixed pseudo-random sequence), one pop per 20 ms.
fn jitter(c: &mut Criterion) {
    let mut g = c.benchmark_group("jitter buffer per packet");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    let payload = [0u8; 160];
    let mut jb = JitterBuffer::new(
        8000,
        Duration::from_millis(20),
        Duration::from_millis(20),
        Duration::from_millis(300),
    );
    let t0 = Instant::now();
    let mut k = 0u32;
    let mut seed = 0x2545_f491_u32;
    g.bench_function("push and pop, 0-30 ms jitter", |b| {
        b.iter(|| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let late = Duration::from_micros(u64::from(seed % 30_000));
            let due = t0 + Duration::from_millis(20 * u64::from(k));
            jb.push(due + late, k as u16, k.wrapping_mul(160), 0, &payload);
            let played = jb.pop(due + Duration::from_millis(20));
            k += 1;
            black_box(played)
        })
    });
}

criterion_group!(benches, codecs, pipelines, jitter);
criterion_main!(benches);
