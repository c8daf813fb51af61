//! What answers a query: the trait every miner backend implements, and the echo backend.

use std::future::Future;
use std::pin::Pin;

/// Why a backend could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The input is not acceptable for the task (for example, not a valid expression).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The backend does not serve the task.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// The backend failed (a crashed subprocess, a bad reply).
    #[error("backend failed: {0}")]
    Failed(String),
    /// The backend's queue is full; the caller may retry later.
    #[error("backend busy: {0}")]
    Busy(String),
}

/// A query's input as a program reads it in JSON: `input` when it is UTF-8 text, else
/// `input_base64` (the bytes, base64 with padding).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct JsonInput<'a> {
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) input: Option<&'a str>,
    /// The bytes, when they are not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) input_base64: Option<String>,
}

impl<'a> JsonInput<'a> {
    /// `bytes` as text if they are UTF-8, else as base64.
    pub(super) fn of(bytes: &'a [u8]) -> Self {
        use base64::Engine as _;
        match std::str::from_utf8(bytes) {
            Ok(text) => Self {
                input: Some(text),
                input_base64: None,
            },
            Err(_) => Self {
                input: None,
                input_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }
}

/// A program's output in JSON: the bytes of `output_base64` when it is given, else those of the
/// `output` text; `None` when it gives neither.
pub(super) fn json_output(
    output: Option<&str>,
    output_base64: Option<&str>,
) -> Result<Option<Vec<u8>>, BackendError> {
    use base64::Engine as _;
    match (output_base64, output) {
        (Some(encoded), _) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(Some)
            .map_err(|e| BackendError::Failed(format!("output_base64 is not base64: {e}"))),
        (None, Some(text)) => Ok(Some(text.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

/// Who sent a query, as the miner knows them from the finalized state; backends that forward
/// queries (`http`, `exec`) pass it on, so a model server can judge its callers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Caller {
    /// The caller's hotkey (hex; empty if its peer id holds no ed25519 key).
    pub hotkey: String,
    /// The stake behind it on the miner's subnet.
    pub stake: u64,
    /// Whether it holds a validator permit on the subnet.
    pub permit: bool,
}

/// What a backend is told beside the task and input: who asks, and what the input holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// Who sent the query, when known.
    pub caller: Option<&'a Caller>,
    /// The input's media type (empty: as the task defines).
    pub content_type: &'a str,
}

/// A boxed future returned by [`MinerBackend::answer`].
pub type AnswerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, BackendError>> + Send + 'a>>;

/// Where a streaming backend puts the pieces of its answer, in order.
pub type ChunkSink = tokio::sync::mpsc::Sender<Vec<u8>>;

/// A boxed future returned by [`MinerBackend::answer_stream`]; it resolves once the answer is complete.
pub type StreamFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + 'a>>;

/// The error for a stream whose reader stopped listening (the query's deadline passed).
pub(crate) fn reader_gone() -> BackendError {
    BackendError::Failed("the reader of the streamed answer went away".into())
}

/// Something that answers queries for a task: a model server, a subprocess, a built-in task.
pub trait MinerBackend: Send + Sync {
    /// A short name for logs (`echo`, `reference`, `exec`, ...).
    fn name(&self) -> &'static str;

    /// The media type of its answers for `task` (see [`meshmind_protocols::media`]); empty when
    /// the task alone says.
    fn content_type(&self, task: &str) -> &'static str {
        let _ = task;
        ""
    }

    /// Answers `input` for `task`.
    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a>;

    /// Answers `input` for `task`, `asked` as it says (by default, as [`MinerBackend::answer`]).
    fn answer_for<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
    ) -> AnswerFuture<'a> {
        let _ = asked;
        self.answer(task, input)
    }

    /// Streams the answer to `input` for `task`, `asked` as it says (by default, as
    /// [`MinerBackend::answer_stream`]).
    fn answer_stream_for<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        let _ = asked;
        self.answer_stream(task, input, sink)
    }

    /// Answers `input` for `task` piece by piece into `sink` (by default, the whole answer as one piece).
    fn answer_stream<'a>(
        &'a self,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            let output = self.answer(task, input).await?;
            sink.send(output).await.map_err(|_| reader_gone())
        })
    }
}

/// A backend that hands each query, with its caller when known, to a program of the operator's
/// own (`exec`, `http`); it is a [`MinerBackend`] through the impl below.
pub(crate) trait Forwarding: Send + Sync {
    /// Its name in logs.
    const NAME: &'static str;

    /// The whole answer to `input` for `task`, `asked` as it says.
    fn whole<'a>(&'a self, asked: Asked<'a>, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a>;

    /// The answer to `input` for `task`, `asked` as it says, piece by piece into `sink`.
    fn pieces<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a>;
}

impl<T: Forwarding> MinerBackend for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        self.whole(Asked::default(), task, input)
    }

    fn answer_for<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
    ) -> AnswerFuture<'a> {
        self.whole(asked, task, input)
    }

    fn answer_stream<'a>(
        &'a self,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        self.pieces(Asked::default(), task, input, sink)
    }

    fn answer_stream_for<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        self.pieces(asked, task, input, sink)
    }
}

/// Another backend with a fixed added latency (for testnets that need a slow miner).
pub struct Delayed {
    inner: std::sync::Arc<dyn MinerBackend>,
    delay: std::time::Duration,
}

impl Delayed {
    /// `inner`, answering `delay` later.
    pub fn new(inner: std::sync::Arc<dyn MinerBackend>, delay: std::time::Duration) -> Self {
        Self { inner, delay }
    }
}

impl MinerBackend for Delayed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn content_type(&self, task: &str) -> &'static str {
        self.inner.content_type(task)
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.answer(task, input).await
        })
    }

    fn answer_stream<'a>(
        &'a self,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.answer_stream(task, input, sink).await
        })
    }

    fn answer_for<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
    ) -> AnswerFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.answer_for(asked, task, input).await
        })
    }

    fn answer_stream_for<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.answer_stream_for(asked, task, input, sink).await
        })
    }
}

/// Answers every task with its input; streamed, one word (with its trailing space) per piece.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl MinerBackend for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn answer<'a>(&'a self, _task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move { Ok(input.to_vec()) })
    }

    fn answer_stream<'a>(
        &'a self,
        _task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            for word in input.split_inclusive(|b| *b == b' ') {
                sink.send(word.to_vec()).await.map_err(|_| reader_gone())?;
            }
            Ok(())
        })
    }
}
