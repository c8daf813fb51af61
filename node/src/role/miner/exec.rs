//! A backend that runs a long-lived subprocess speaking JSON lines on stdin and stdout.
//!
//! Request line: `{"id": 7, "task": "sort", "input": "b a", "caller": {"hotkey": "<hex>", "stake": 0,
//! "permit": false}, "content_type": "text/plain"}` (`caller`: who sent the query, when known;
//! `content_type`: the input's media type, when the query says; an input that is not UTF-8 comes as
//! `input_base64` instead of `input`). Reply line: `{"id": 7, "output": "a b"}` (or
//! `"output_base64"` for bytes) or `{"id": 7, "error": "why"}`. Replies may come in any order. A streamed query's request line also has
//! `"stream": true`; the process may then write any number of `{"id": 7, "chunk": "..."}` lines before
//! the final reply, whose `output` (possibly empty) is the last piece. A process that exits fails the
//! queries in flight and is started again on the next query.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::backend::{
    AnswerFuture, Asked, BackendError, Caller, ChunkSink, Forwarding, JsonInput, StreamFuture,
    json_output, reader_gone,
};

/// Longest reply line read from the process.
const MAX_LINE: u64 = 4 << 20;

/// Pieces of one reply buffered between the process and the query reading them.
const PIECES_BUFFERED: usize = 64;

/// One line of a reply: a streamed piece, or the end with the last piece or an error.
enum Piece {
    Chunk(Vec<u8>),
    Done(Result<Vec<u8>, BackendError>),
}

/// Where a query waits for its reply.
type Waiter = mpsc::Sender<Piece>;
type Pending = Arc<Mutex<HashMap<u64, Waiter>>>;

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    task: &'a str,
    #[serde(flatten)]
    input: JsonInput<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<&'a Caller>,
    #[serde(skip_serializing_if = "str::is_empty")]
    content_type: &'a str,
}

#[derive(Deserialize)]
struct Reply {
    id: u64,
    #[serde(default)]
    chunk: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    output_base64: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs queries through a subprocess.
pub struct Exec {
    program: String,
    args: Vec<String>,
    running: tokio::sync::Mutex<Option<Running>>,
    pending: Pending,
    next_id: AtomicU64,
}

fn lock(pending: &Pending) -> std::sync::MutexGuard<'_, HashMap<u64, Waiter>> {
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes a query's pending entry if its caller gives up (for example, at the deadline).
struct PendingGuard {
    pending: Pending,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

impl Exec {
    /// A backend that runs `program` with `args` when first needed.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            args,
            running: tokio::sync::Mutex::new(None),
            pending: Arc::default(),
            next_id: AtomicU64::new(1),
        }
    }

    fn spawn(&self) -> Result<Running, BackendError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BackendError::Failed(format!("starting {}: {e}", self.program)))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BackendError::Failed("subprocess pipes unavailable".into()));
        };
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let pending = self.pending.clone();
        let reader_alive = alive.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = (&mut reader)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut line)
                    .await;
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_LINE => {
                        tracing::warn!("exec backend reply over {MAX_LINE} bytes; restarting it");
                        break;
                    }
                    Ok(_) => {}
                }
                let Ok(reply) = serde_json::from_slice::<Reply>(&line) else {
                    tracing::warn!("exec backend wrote a line that is not a reply; ignored");
                    continue;
                };
                let finished = reply.output.is_some() || reply.output_base64.is_some();
                if let (Some(chunk), false, None) = (&reply.chunk, finished, &reply.error) {
                    let waiter = lock(&pending).get(&reply.id).cloned();
                    if let Some(waiter) = waiter {
                        // Backpressure: a slow reader slows the process, bounded by its deadline.
                        let _ = waiter.send(Piece::Chunk(chunk.as_bytes().to_vec())).await;
                    }
                    continue;
                }
                let result = match reply.error {
                    Some(error) => Err(BackendError::Failed(error)),
                    None => json_output(reply.output.as_deref(), reply.output_base64.as_deref())
                        .and_then(|o| {
                            o.ok_or_else(|| BackendError::Failed("reply without output".into()))
                        }),
                };
                let waiter = lock(&pending).remove(&reply.id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Piece::Done(result)).await;
                }
            }
            reader_alive.store(false, Ordering::SeqCst);
            let waiters: Vec<Waiter> = lock(&pending).drain().map(|(_, w)| w).collect();
            for waiter in waiters {
                let _ = waiter.try_send(Piece::Done(Err(exited())));
            }
        });
        Ok(Running {
            child,
            stdin,
            alive,
        })
    }

    async fn send(&self, line: &[u8]) -> Result<(), BackendError> {
        let mut running = self.running.lock().await;
        let healthy = running
            .as_ref()
            .is_some_and(|r| r.alive.load(Ordering::SeqCst));
        if !healthy {
            if let Some(mut old) = running.take() {
                let _ = old.child.start_kill();
            }
            *running = Some(self.spawn()?);
        }
        let Some(process) = running.as_mut() else {
            return Err(BackendError::Failed("subprocess not running".into()));
        };
        let written = async {
            process.stdin.write_all(line).await?;
            process.stdin.flush().await
        }
        .await;
        written.map_err(|e| {
            process.alive.store(false, Ordering::SeqCst);
            BackendError::Failed(format!("writing to the subprocess: {e}"))
        })
    }
}

impl Exec {
    /// Sends one query to the process and returns where its reply pieces arrive.
    async fn start(
        &self,
        asked: Asked<'_>,
        task: &str,
        input: &[u8],
        stream: bool,
    ) -> Result<(mpsc::Receiver<Piece>, PendingGuard), BackendError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            id,
            task,
            input: JsonInput::of(input),
            stream,
            caller: asked.caller,
            content_type: asked.content_type,
        };
        let mut line =
            serde_json::to_vec(&request).map_err(|e| BackendError::Failed(e.to_string()))?;
        line.push(b'\n');
        let (tx, rx) = mpsc::channel(PIECES_BUFFERED);
        lock(&self.pending).insert(id, tx);
        let guard = PendingGuard {
            pending: self.pending.clone(),
            id,
        };
        self.send(&line).await?;
        Ok((rx, guard))
    }
}

fn exited() -> BackendError {
    BackendError::Failed("the subprocess exited".into())
}

impl Forwarding for Exec {
    const NAME: &'static str = "exec";

    fn whole<'a>(&'a self, asked: Asked<'a>, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            let (mut pieces, _guard) = self.start(asked, task, input, false).await?;
            let mut answer = Vec::new();
            loop {
                match pieces.recv().await.ok_or_else(exited)? {
                    Piece::Chunk(chunk) => answer.extend_from_slice(&chunk),
                    Piece::Done(last) => {
                        answer.extend_from_slice(&last?);
                        return Ok(answer);
                    }
                }
            }
        })
    }

    fn pieces<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            let (mut pieces, _guard) = self.start(asked, task, input, true).await?;
            loop {
                match pieces.recv().await.ok_or_else(exited)? {
                    Piece::Chunk(chunk) => sink.send(chunk).await.map_err(|_| reader_gone())?,
                    Piece::Done(last) => {
                        let last = last?;
                        if !last.is_empty() {
                            sink.send(last).await.map_err(|_| reader_gone())?;
                        }
                        return Ok(());
                    }
                }
            }
        })
    }
}
