//! The bytes going to one RTMP client over TCP or TLS, written by a task of
//! their own. The connection hands bytes over and never waits: a client that
//! reads slowly (or not at all) must not stop the connection from reading
//! what the client sends, answering its calls, or keeping its call alive.
//! Instead the connection looks at [`ClientWriter::unsent`] — what the kernel
//! has not taken yet — and drops audio down beyond a backlog (audio late by
//! seconds is worth nothing on a phone call), and closes a client that has
//! read nothing for too long, saying so.
//!
//! Video goes in a lane of its own, written only when nothing else waits:
//! a client's audio (and its commands) never queue behind a keyframe, and
//! the connection drops video, not audio, when the client reads slowly.
//! The two lanes carry whole RTMP messages of different chunk streams, so
//! reordering them between messages is allowed (RTMP §5.3.1).
//!
//! Bytes that carry call audio come with the instant the audio left the
//! jitter buffer; once the kernel has taken them, the wait is what sono added
//! on the way down (`sono_media_latency_seconds{direction="down"}`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::Shared;

/// The writer task is done: the client is gone (`Some` error) or the
/// connection closed it and everything was written (`None`).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WriterDone(pub Option<io::Error>);

pub struct ClientWriter {
    queue: Option<mpsc::UnboundedSender<(Vec<u8>, Option<Instant>)>>,
    video: Option<mpsc::UnboundedSender<Vec<u8>>>,
    unsent: Arc<AtomicUsize>,
    video_unsent: Arc<AtomicUsize>,
}

impl ClientWriter {
    /// Starts the writing task on the current arbiter; `done` hears when it
    /// ends.
    pub fn spawn<W>(write: W, done: Recipient<WriterDone>, shared: Arc<Shared>) -> ClientWriter
    where
        W: AsyncWrite + Unpin + 'static,
    {
        ClientWriter::spawn_with(write, done, move |waited| {
            shared.metrics.media_latency_down.observe(waited)
        })
    }

    /// The same, telling `audio_written` how long each piece of audio
    /// waited from the jitter buffer to the kernel.
    pub fn spawn_with<W>(
        mut write: W,
        done: Recipient<WriterDone>,
        audio_written: impl Fn(std::time::Duration) + 'static,
    ) -> ClientWriter
    where
        W: AsyncWrite + Unpin + 'static,
    {
        let (queue, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Option<Instant>)>();
        let (video, mut video_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let unsent = Arc::new(AtomicUsize::new(0));
        let video_unsent = Arc::new(AtomicUsize::new(0));
        let (counter, video_counter) = (unsent.clone(), video_unsent.clone());
        actix::spawn(async move {
            let mut outcome = None;
            loop {
                let (bytes, audio_taken, lane) = tokio::select! {
                    biased;
                    Some((bytes, taken)) = rx.recv() => (bytes, taken, &counter),
                    Some(bytes) = video_rx.recv() => (bytes, None, &video_counter),
                    else => break,
                };
                let written = write.write_all(&bytes).await;
                lane.fetch_sub(bytes.len(), Ordering::AcqRel);
                if let Err(e) = written {
                    outcome = Some(e);
                    break;
                }
                if let Some(taken) = audio_taken {
                    audio_written(taken.elapsed());
                }
            }
            if outcome.is_none() {
                // Closed by the connection: everything queued was written.
                let _ = write.shutdown().await;
            }
            done.do_send(WriterDone(outcome));
        });
        ClientWriter {
            queue: Some(queue),
            video: Some(video),
            unsent,
            video_unsent,
        }
    }

    /// Queues video bytes, sent once nothing else waits.
    pub fn write_video(&mut self, bytes: Vec<u8>) {
        let Some(queue) = &self.video else {
            return;
        };
        let len = bytes.len();
        self.video_unsent.fetch_add(len, Ordering::AcqRel);
        if queue.send(bytes).is_err() {
            self.video_unsent.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Video bytes queued and not yet written.
    pub fn video_unsent(&self) -> usize {
        self.video_unsent.load(Ordering::Acquire)
    }

    /// Queues `bytes` for the client; `audio_taken` if they carry call audio
    /// that left the jitter buffer then.
    pub fn write(&mut self, bytes: Vec<u8>, audio_taken: Option<Instant>) {
        let Some(queue) = &self.queue else {
            return;
        };
        let len = bytes.len();
        self.unsent.fetch_add(len, Ordering::AcqRel);
        if queue.send((bytes, audio_taken)).is_err() {
            // The task has ended (write error): nothing will be sent.
            self.unsent.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Bytes queued ahead of any video that the kernel has not taken yet.
    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::Acquire)
    }

    /// Writes what is queued, then shuts the stream down.
    pub fn close(&mut self) {
        self.queue = None;
        self.video = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    struct Done;

    impl Actor for Done {
        type Context = Context<Self>;
    }

    impl Handler<WriterDone> for Done {
        type Result = ();

        fn handle(&mut self, _: WriterDone, _: &mut Context<Self>) {}
    }

    /// A client whose TCP window is full: the video message being written
    /// finishes, then what else waits goes before the next video message.
    #[actix::test]
    async fn audio_queued_behind_a_stalled_client_goes_before_waiting_video() {
        let (ours, mut client) = tokio::io::duplex(64);
        let done = Done.start().recipient();
        let mut w = ClientWriter::spawn_with(ours, done, |_| {});
        w.write_video(vec![b'V'; 1000]);
        // The writer is stuck in the first video message now.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        w.write_video(vec![b'v'; 1000]);
        w.write(vec![b'A'; 10], None);
        assert_eq!(w.unsent(), 10);
        assert!(w.video_unsent() >= 1000);
        let mut got = vec![0u8; 2010];
        client.read_exact(&mut got).await.unwrap();
        let order: Vec<u8> = got.iter().fold(Vec::new(), |mut o, b| {
            if o.last() != Some(b) {
                o.push(*b);
            }
            o
        });
        assert_eq!(order, b"VAv".to_vec(), "audio waited behind video");
        w.close();
    }
}
