//! What the codecs decoded by symphonia (AAC, MP3) share: their output mixed
//! down to mono 16-bit PCM, and a guard around the decoder itself.
//!
//! The guard is there because symphonia decodes what any RTMP client sends:
//! should a malformed frame ever reach a panic inside it, that frame is
//! lost and the decoder replaced, and the call goes on — a third-party
//! decoder's bug must not take down the actor thread that carries other
//! calls.

use std::panic::{catch_unwind, AssertUnwindSafe};

use symphonia_core::audio::{AudioBufferRef, Signal};
use symphonia_core::conv::IntoSample;
use symphonia_core::sample::Sample;

/// Appends `buffer`'s frames to `out`, the channels averaged.
pub fn append_mono(buffer: AudioBufferRef<'_>, out: &mut Vec<i16>) {
    match buffer {
        AudioBufferRef::F32(b) => mix(&b, out),
        AudioBufferRef::F64(b) => mix(&b, out),
        AudioBufferRef::S16(b) => mix(&b, out),
        AudioBufferRef::S32(b) => mix(&b, out),
        AudioBufferRef::U8(b) => mix(&b, out),
        AudioBufferRef::U16(b) => mix(&b, out),
        AudioBufferRef::U24(b) => mix(&b, out),
        AudioBufferRef::U32(b) => mix(&b, out),
        AudioBufferRef::S8(b) => mix(&b, out),
        AudioBufferRef::S24(b) => mix(&b, out),
    }
}

fn mix<S: Sample + IntoSample<f32>>(b: &symphonia_core::audio::AudioBuffer<S>, out: &mut Vec<i16>) {
    let channels = b.spec().channels.count();
    if channels == 0 {
        return;
    }
    let scale = 32_768.0 / channels as f32;
    out.reserve(b.frames());
    for i in 0..b.frames() {
        let sum: f32 = (0..channels).map(|c| b.chan(c)[i].into_sample()).sum();
        out.push((sum * scale).clamp(-32_768.0, 32_767.0) as i16);
    }
}

/// Runs `decode`; `None` if it panicked.
pub fn guarded<T>(decode: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(decode)).ok()
}
