//! See `sono_media::fuzzing::mp3` for what this target checks.
//!
//! symphonia's decoders panic on some malformed frames; sono contains those
//! panics (`sono_media::symphonia_pcm::guarded`: the frame is lost, the
//! decoder replaced, the call goes on). So this target lets a panic raised
//! inside symphonia's source unwind to that guard, and aborts, as every
//! other target does, on any panic elsewhere: in our framing, our parsers,
//! or the driver's own checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_some_and(|l| l.file().contains("/symphonia-")) {
                return;
            }
            abort(info);
        }));
    },
    |data: &[u8]| sono_media::fuzzing::mp3(data)
);
