//! The bytes going to one RTMP client over TCP or TLS, written by a task of
//! their own. The connection hands bytes over and never waits: a client that
//! reads slowly (or not at all) must not stop the connection from reading
//! what the client sends, answering its calls, or keeping its call alive.
//! Instead the connection looks at [`ClientWriter::unsent`] — what the kernel
//! has not taken yet — and drops audio down beyond a backlog (audio late by
//! seconds is worth nothing on a phone call), and closes a client that has
//! read nothing for too long, saying so.
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
    unsent: Arc<AtomicUsize>,
}

impl ClientWriter {
    /// Starts the writing task on the current arbiter; `done` hears when it
    /// ends.
    pub fn spawn<W>(mut write: W, done: Recipient<WriterDone>, shared: Arc<Shared>) -> ClientWriter
    where
        W: AsyncWrite + Unpin + 'static,
    {
        let (queue, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Option<Instant>)>();
        let unsent = Arc::new(AtomicUsize::new(0));
        let counter = unsent.clone();
        actix::spawn(async move {
            let mut outcome = None;
            while let Some((bytes, audio_taken)) = rx.recv().await {
                let written = write.write_all(&bytes).await;
                counter.fetch_sub(bytes.len(), Ordering::AcqRel);
                if let Err(e) = written {
                    outcome = Some(e);
                    break;
                }
                if let Some(taken) = audio_taken {
                    shared.metrics.media_latency_down.observe(taken.elapsed());
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
            unsent,
        }
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

    /// Bytes queued that the kernel has not taken yet.
    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::Acquire)
    }

    /// Writes what is queued, then shuts the stream down.
    pub fn close(&mut self) {
        self.queue = None;
    }
}
