//! The Deno engine: the real Deno runtime (the `deno` binary), one sandboxed process per action.
//!
//! Every process runs with no prompts, no config or lock file, no npm or remote modules, read,
//! write, env, run, ffi and sys denied, network allowed only to the configured hosts (none by
//! default, and remote imports denied whatever the network policy), a V8 heap limit, a watch on its
//! resident memory, an empty environment and its own empty `DENO_DIR`. It is killed at the time
//! limit (lowered by the action's [`Budget`](crate::Budget)). A pool of warm processes (started
//! and waiting for their action) hides Deno's start-up; a process runs one action and is
//! discarded.
//!
//! The host talks to the process over its pipes with framed JSON (see `js/deno.js`).
//!
//! The `ethers` bundle, read when the engine is built, is written into the bootstrap module as a
//! string: a process parses it as a string literal when it starts (in the warm pool, before its
//! action arrives) and evaluates it only if its action uses `ethers` (see [`super::ethers`]), or,
//! with [`DenoConfig::with_preloaded_ethers`], as soon as it starts.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rand_core::{OsRng, RngCore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::{ethers, precheck, Engine, EngineConfig, PRELUDE};
use crate::action::{Action, ActionOutcome};
use crate::error::ActionError;
use crate::host::ActionHost;
use crate::limits::Limits;
use crate::session::{drive, FromSandbox, Session};

const NAME: &str = "deno";
const BOOTSTRAP: &str = include_str!("../../js/deno.js");
/// Largest stderr kept from a process (to explain how it died).
const STDERR_CAP: usize = 64 * 1024;
/// The environment variable naming the Deno binary.
pub const DENO_ENV: &str = "LIT_DENO";

/// Finds the Deno binary: `$LIT_DENO`, then the workspace's `.tools/bin/deno` (installed by
/// `./test.sh`), then `deno` on `PATH`.
pub fn find_deno() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(DENO_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/deno");
    if tools.is_file() {
        return Some(tools);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("deno"))
            .find(|p| p.is_file())
    })
}

/// Configuration of the Deno engine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DenoConfig {
    /// Limits and network policy.
    pub engine: EngineConfig,
    /// The binary (default: [`find_deno`]).
    pub binary: Option<PathBuf>,
    /// Warm processes kept ready (0: start one per action).
    pub pool_size: usize,
    /// Actions running at once (others wait).
    pub max_concurrent: usize,
    /// Evaluate the `ethers` bundle when a process starts rather than on its action's first use.
    pub preload_ethers: bool,
}

impl DenoConfig {
    /// Defaults: binary found by [`find_deno`], 2 warm processes, 16 concurrent actions.
    pub fn new(engine: EngineConfig) -> Self {
        Self {
            engine,
            binary: None,
            pool_size: 2,
            max_concurrent: 16,
            preload_ethers: false,
        }
    }

    /// This configuration with this binary.
    pub fn with_binary(mut self, binary: PathBuf) -> Self {
        self.binary = Some(binary);
        self
    }

    /// This configuration with this many warm processes.
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// This configuration evaluating the `ethers` bundle as soon as a process starts (in the warm
    /// pool, before its action arrives), or not (the default: on the action's first use). Preloading
    /// takes the bundle's evaluation (about 0.2 s) off the latency of actions that use `ethers`,
    /// and adds it to the start of every process, whether its action uses `ethers` or not.
    pub fn with_preloaded_ethers(mut self, preload: bool) -> Self {
        self.preload_ethers = preload;
        self
    }

    /// This configuration with this many concurrent actions.
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }
}

/// The Deno engine.
pub struct DenoEngine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    pool_size: usize,
    binary: PathBuf,
    /// Warm processes (declared before `dir`: they are killed before it is removed).
    pool: Mutex<VecDeque<Process>>,
    /// Holds the bootstrap module and the processes' private `DENO_DIR`s; removed on drop.
    dir: tempfile::TempDir,
    permits: Semaphore,
}

/// A started process waiting for its action.
struct Process {
    /// The process's own `DENO_DIR` (Deno writes analysis caches there): nothing is shared
    /// between two actions.
    deno_dir: tempfile::TempDir,
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: JoinHandle<Vec<u8>>,
}

impl DenoEngine {
    /// An engine with this configuration; fails if no Deno binary is found.
    pub fn new(config: DenoConfig) -> Result<Self, ActionError> {
        let unavailable = |reason: String| ActionError::EngineUnavailable {
            engine: NAME,
            reason,
        };
        let binary = config.binary.clone().or_else(find_deno).ok_or_else(|| {
            unavailable(format!(
                "no deno binary: set {DENO_ENV}, run ./test.sh (installs .tools/bin/deno) or put deno on PATH"
            ))
        })?;
        let dir = tempfile::Builder::new()
            .prefix("lit-actions-deno-")
            .tempdir()
            .map_err(|e| unavailable(format!("cannot create a private directory: {e}")))?;
        let ethers = config.engine.ethers.load(NAME, false)?;
        std::fs::write(
            dir.path().join("bootstrap.js"),
            format!(
                "{PRELUDE}\n{}{BOOTSTRAP}",
                ethers::deno_install(ethers.as_ref(), config.preload_ethers)
            ),
        )
        .map_err(|e| unavailable(format!("cannot write the bootstrap: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.engine,
                pool_size: config.pool_size,
                binary,
                dir,
                pool: Mutex::new(VecDeque::new()),
                permits: Semaphore::new(config.max_concurrent.max(1)),
            }),
        })
    }

    /// The binary in use.
    pub fn binary(&self) -> &Path {
        &self.inner.binary
    }

    /// Starts warm processes until the pool is full (call from within a tokio runtime).
    pub async fn warm_up(&self) -> Result<(), ActionError> {
        loop {
            if self.inner.pool_len() >= self.inner.pool_size {
                return Ok(());
            }
            let p = self.inner.spawn()?;
            self.inner.put(p);
        }
    }
}

impl Inner {
    fn pool_len(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// A warm process that is still alive (one that died while waiting is discarded).
    fn take(&self) -> Option<Process> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut p) = pool.pop_front() {
            if let Ok(None) = p.child.try_wait() {
                return Some(p);
            }
        }
        None
    }

    fn put(&self, p: Process) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < self.pool_size {
            pool.push_back(p);
        }
    }

    /// The command line of a sandboxed process.
    fn command(&self, deno_dir: &Path) -> Command {
        let limits = &self.config.limits;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("run")
            .args([
                "--quiet",
                "--no-prompt",
                "--no-config",
                "--no-lock",
                "--no-npm",
                "--no-remote",
                "--cached-only",
                "--deny-read",
                "--deny-write",
                "--deny-env",
                "--deny-run",
                "--deny-ffi",
                "--deny-sys",
                "--deny-import",
            ])
            .arg(format!(
                "--v8-flags=--max-old-space-size={}",
                (limits.memory_bytes / (1024 * 1024)).max(8)
            ));
        if self.config.net.is_empty() {
            cmd.arg("--deny-net");
        } else {
            cmd.arg(format!("--allow-net={}", self.config.net.deno_flag_value()));
        }
        cmd.arg(self.dir.path().join("bootstrap.js"))
            .env_clear()
            .env("DENO_DIR", deno_dir)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    fn spawn(&self) -> Result<Process, ActionError> {
        let deno_dir = tempfile::Builder::new()
            .prefix("deno-dir-")
            .tempdir_in(self.dir.path())
            .map_err(|e| ActionError::EngineUnavailable {
                engine: NAME,
                reason: format!("cannot create a DENO_DIR: {e}"),
            })?;
        let mut child =
            self.command(deno_dir.path())
                .spawn()
                .map_err(|e| ActionError::EngineUnavailable {
                    engine: NAME,
                    reason: format!("cannot start {}: {e}", self.binary.display()),
                })?;
        let missing = || ActionError::Engine {
            engine: NAME,
            reason: "a pipe of the process is missing".into(),
        };
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let mut stderr = child.stderr.take().ok_or_else(missing)?;
        let stderr = tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let room = STDERR_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
            }
            kept
        });
        Ok(Process {
            deno_dir,
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    fn refill(self: &Arc<Self>) {
        if self.pool_size == 0 || self.pool_len() >= self.pool_size {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Ok(p) = me.spawn() {
                me.put(p);
            }
        });
    }
}

#[async_trait]
impl Engine for DenoEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    async fn run(
        &self,
        action: &Action,
        host: Arc<dyn ActionHost>,
    ) -> Result<ActionOutcome, ActionError> {
        let inner = &self.inner;
        let limits = inner.config.limits.clone();
        precheck(action, &limits)?;
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| ActionError::Engine {
                engine: NAME,
                reason: "the engine is shut down".into(),
            })?;
        let process = match inner.take() {
            Some(p) => p,
            None => inner.spawn()?,
        };
        inner.refill();
        let Process {
            deno_dir,
            mut child,
            mut stdin,
            stdout,
            stderr,
        } = process;

        let mut token = [0u8; 16];
        OsRng.fill_bytes(&mut token);
        let job = serde_json::json!({
            "code": action.code(),
            "params": action.params(),
            "auth": action.auth(),
            "token": token.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        let session = Arc::new(Session::new(
            action,
            host,
            limits.clone(),
            inner.config.net.clone(),
            None,
        ));

        let (to_host, mut from_deno) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(
            stdout,
            token,
            limits.message_bytes,
            to_host.clone(),
            stderr,
            limits.memory_bytes,
        ));
        let (to_deno, mut replies) = mpsc::unbounded_channel::<String>();
        let first = job.to_string();
        let writer = tokio::spawn(async move {
            write_frame(&mut stdin, first.as_bytes()).await?;
            while let Some(text) = replies.recv().await {
                write_frame(&mut stdin, text.as_bytes()).await?;
            }
            Ok::<(), std::io::Error>(())
        });

        let watcher = child
            .id()
            .map(|pid| tokio::spawn(watch_memory(pid, limits.memory_bytes, to_host.clone())));
        drop(to_host);
        let result = drive(
            session,
            &mut from_deno,
            |text| to_deno.send(text).is_ok(),
            NAME,
        )
        .await;

        // One process, one action: whatever happened, it is killed and reaped.
        let _ = child.start_kill();
        reader.abort();
        writer.abort();
        if let Some(w) = watcher {
            w.abort();
        }
        tokio::spawn(async move {
            let _ = child.wait().await;
            drop(deno_dir);
        });
        result
    }
}

async fn write_frame(stdin: &mut ChildStdin, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    stdin.write_all(&len.to_be_bytes()).await?;
    stdin.write_all(body).await?;
    stdin.flush().await
}

/// Reads frames from the process until it ends; then says how it ended.
async fn read_frames(
    mut stdout: ChildStdout,
    token: [u8; 16],
    max: usize,
    to_host: mpsc::UnboundedSender<FromSandbox>,
    stderr: JoinHandle<Vec<u8>>,
    memory_bytes: usize,
) {
    let violation = loop {
        let mut header = [0u8; 20];
        if stdout.read_exact(&mut header).await.is_err() {
            break None;
        }
        let (len, got) = header.split_at(4);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if got != token {
            break Some(
                "a frame without the session token (code wrote to the host channel)".to_owned(),
            );
        }
        if len > max {
            break Some(format!("a {len}-byte frame, over the {max}-byte limit"));
        }
        let mut body = vec![0u8; len];
        if stdout.read_exact(&mut body).await.is_err() {
            break None;
        }
        if to_host.send(FromSandbox::Message(body)).is_err() {
            return;
        }
    };
    let error = match violation {
        Some(reason) => ActionError::SandboxViolation { reason },
        None => {
            let err = stderr.await.unwrap_or_default();
            let err = String::from_utf8_lossy(&err);
            if err.contains("out of memory") || err.contains("Reached heap limit") {
                ActionError::MemoryLimit {
                    limit_bytes: memory_bytes,
                }
            } else if let Some(at) = err.find("error: Uncaught") {
                // A rejection nobody handled (Deno ends the process for it).
                ActionError::Script {
                    message: err
                        .get(at + "error: ".len()..)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                }
            } else if err.trim().is_empty() {
                // The action ended its own process (`Deno.exit`, `process.exit`).
                ActionError::SandboxViolation {
                    reason: "the process exited before the action finished".into(),
                }
            } else {
                ActionError::Engine {
                    engine: NAME,
                    reason: format!("deno exited: {}", err.trim()),
                }
            }
        }
    };
    let _ = to_host.send(FromSandbox::Exited(error));
}

/// Memory the Deno runtime itself needs on top of the action's heap (V8 isolate, code, buffers).
const RUNTIME_OVERHEAD: u64 = 192 * 1024 * 1024;

/// Ends the action when the process's resident memory passes the limit plus the runtime's own
/// needs: V8's heap limit does not cover memory outside the JavaScript heap (ArrayBuffers).
/// Reads `/proc/<pid>/statm`; where there is no `/proc` it does nothing.
async fn watch_memory(pid: u32, limit: usize, to_host: mpsc::UnboundedSender<FromSandbox>) {
    let path = format!("/proc/{pid}/statm");
    // The kernel's page size is 4 KiB on the platforms Deno ships for (x86-64, aarch64 Linux).
    const PAGE: u64 = 4096;
    let max = limit as u64 + RUNTIME_OVERHEAD;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        tick.tick().await;
        // A /proc read does not block on I/O.
        let Ok(statm) = std::fs::read_to_string(&path) else {
            return;
        };
        let resident = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0);
        if resident * PAGE > max {
            let _ = to_host.send(FromSandbox::Exited(ActionError::MemoryLimit {
                limit_bytes: limit,
            }));
            return;
        }
    }
}
