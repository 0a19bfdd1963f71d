//! The embedded engine: QuickJS through `rquickjs`. Needs nothing installed.
//!
//! Each action gets a fresh QuickJS runtime (nothing survives from one action to the next) on its
//! own thread, with a memory limit, a stack limit and an interrupt handler that stops it at the
//! time limit (lowered by the action's [`Budget`](crate::Budget)) or when the host ends it. The
//! runtime has no module loader and no I/O: its only capability is one transport function to the
//! host, which the prelude captures and removes from the global object. `fetch` and timers are
//! served by the host. The `ethers` global evaluates the bundle read when the engine was built
//! into the action's own runtime, on the action's first use of it (see [`super::ethers`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rquickjs::context::EvalOptions;
use rquickjs::{Context, Ctx, Function, Object, Runtime, Value};
use tokio::sync::mpsc;

use super::ethers::{self, EthersBundle};
use super::{precheck, Engine, EngineConfig, PRELUDE};
use crate::action::{Action, ActionOutcome};
use crate::error::ActionError;
use crate::host::ActionHost;
use crate::limits::Limits;
use crate::net::Fetcher;
use crate::session::{drive, script_error, FromSandbox, Session};

const NAME: &str = "quickjs";
/// Native stack of the thread that runs an action.
/// The most bytes one `crypto.getRandomValues` fills (the Web Crypto API's limit).
const MAX_RANDOM_BYTES: usize = 65_536;

const THREAD_STACK: usize = 16 * 1024 * 1024;
/// JavaScript stack QuickJS may use (well under the thread's, so overflow is a JS error).
const JS_STACK: usize = 4 * 1024 * 1024;

/// The QuickJS engine.
pub struct QuickJsEngine {
    config: EngineConfig,
    fetcher: Fetcher,
    /// The `ethers` bundle, read once.
    ethers: Option<EthersBundle>,
}

impl QuickJsEngine {
    /// An engine with this configuration.
    pub fn new(config: EngineConfig) -> Result<Self, ActionError> {
        let fetcher =
            Fetcher::new(&config.net).map_err(|reason| ActionError::EngineUnavailable {
                engine: NAME,
                reason,
            })?;
        let ethers = config.ethers.load(NAME, true)?;
        Ok(Self {
            config,
            fetcher,
            ethers,
        })
    }
}

/// Ends the JavaScript thread when the host side is done with it.
struct AbortOnDrop(Arc<AtomicBool>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Engine for QuickJsEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn limits(&self) -> &Limits {
        &self.config.limits
    }

    async fn run(
        &self,
        action: &Action,
        host: Arc<dyn ActionHost>,
    ) -> Result<ActionOutcome, ActionError> {
        let limits = self.config.limits.clone();
        precheck(action, &limits)?;
        let session = Arc::new(Session::new(
            action,
            host,
            limits.clone(),
            self.config.net.clone(),
            Some(self.fetcher.clone()),
        ));
        let (to_host, mut from_js) = mpsc::unbounded_channel();
        let (to_js, from_host) = std_mpsc::channel::<String>();
        let abort = Arc::new(AtomicBool::new(false));
        let _guard = AbortOnDrop(abort.clone());
        let job = Job {
            code: action.code().to_owned(),
            params: serde_json::Value::Object(action.params().clone()).to_string(),
            auth: serde_json::to_string(&action.auth()).unwrap_or_else(|_| "{}".into()),
            limits,
            ethers: self.ethers.clone(),
            deadline: session.deadline(),
            time_up: session.time_up(),
            abort,
            to_host,
            from_host,
        };
        std::thread::Builder::new()
            .name("lit-action-quickjs".into())
            .stack_size(THREAD_STACK)
            .spawn(move || job.run())
            .map_err(|e| ActionError::Engine {
                engine: NAME,
                reason: format!("cannot start a thread: {e}"),
            })?;
        drive(session, &mut from_js, |text| to_js.send(text).is_ok(), NAME).await
    }
}

/// Everything the JavaScript thread needs.
struct Job {
    code: String,
    params: String,
    auth: String,
    limits: Limits,
    ethers: Option<EthersBundle>,
    /// The session's deadline (the time limit lowered by the action's budget).
    deadline: Instant,
    /// The error of an action still running at `deadline`.
    time_up: ActionError,
    abort: Arc<AtomicBool>,
    to_host: mpsc::UnboundedSender<FromSandbox>,
    from_host: std_mpsc::Receiver<String>,
}

impl Job {
    fn run(self) {
        let to_host = self.to_host.clone();
        if let Err(e) = self.run_inner() {
            let _ = to_host.send(FromSandbox::Exited(e));
        }
    }

    fn timeout(&self) -> ActionError {
        self.time_up.clone()
    }

    fn stopped(&self) -> bool {
        self.abort.load(Ordering::SeqCst) || Instant::now() >= self.deadline
    }

    fn run_inner(self) -> Result<(), ActionError> {
        let engine_err = |e: rquickjs::Error| ActionError::Engine {
            engine: NAME,
            reason: e.to_string(),
        };
        let rt = Runtime::new().map_err(engine_err)?;
        rt.set_memory_limit(self.limits.memory_bytes);
        rt.set_max_stack_size(JS_STACK);
        let abort = self.abort.clone();
        let deadline = self.deadline;
        rt.set_interrupt_handler(Some(Box::new(move || {
            abort.load(Ordering::SeqCst) || Instant::now() >= deadline
        })));
        let unhandled = Rc::new(RefCell::new(Vec::<String>::new()));
        let tracker = unhandled.clone();
        rt.set_host_promise_rejection_tracker(Some(Box::new(
            move |_ctx, _promise, reason: Value<'_>, is_handled| {
                let mut list = tracker.borrow_mut();
                if is_handled {
                    list.pop();
                } else {
                    list.push(describe_value(&reason));
                }
            },
        )));
        let context = Context::full(&rt).map_err(engine_err)?;
        context.with(|ctx| self.session(&ctx, &unhandled))
    }

    /// Loads the prelude, starts the code and runs the event loop until the host stops it.
    fn session(&self, ctx: &Ctx<'_>, unhandled: &RefCell<Vec<String>>) -> Result<(), ActionError> {
        let deliver = self.start(ctx).map_err(|e| self.classify(ctx, e))?;
        loop {
            while ctx.execute_pending_job() {
                if self.stopped() {
                    return self.end();
                }
            }
            // Like Deno, a rejection still unhandled once the microtasks ran ends the action.
            if let Some(reason) = unhandled.borrow().first() {
                return Err(ActionError::Script {
                    message: format!("Uncaught (in promise) {reason}"),
                });
            }
            if self.stopped() {
                return self.end();
            }
            let wait = self.deadline.saturating_duration_since(Instant::now());
            match self
                .from_host
                .recv_timeout(wait.min(Duration::from_millis(50)))
            {
                Ok(text) => {
                    if let Err(e) = deliver.call::<_, ()>((text,)) {
                        return Err(self.classify(ctx, e));
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                // The host is done with this action.
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn end(&self) -> Result<(), ActionError> {
        if self.abort.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(self.timeout())
        }
    }

    fn start<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
        ctx.eval::<(), _>(PRELUDE)?;
        self.install_ethers(ctx)?;
        let globals = ctx.globals();
        let to_host = self.to_host.clone();
        let send = Function::new(ctx.clone(), move |text: String| {
            let _ = to_host.send(FromSandbox::Message(text.into_bytes()));
        })?;
        let transport = Object::new(ctx.clone())?;
        transport.set("send", send)?;
        // what the prelude's `crypto` needs and plain JavaScript cannot do: a CSPRNG and SHA-2
        let native = Object::new(ctx.clone())?;
        let random = Function::new(ctx.clone(), |n: usize| {
            use rand_core::RngCore as _;
            let mut bytes = vec![0u8; n.min(MAX_RANDOM_BYTES)];
            rand_core::OsRng.fill_bytes(&mut bytes);
            bytes
        })?;
        native.set("randomBytes", random)?;
        let digest = Function::new(ctx.clone(), |algorithm: String, data: Vec<u8>| {
            use sha2::Digest as _;
            match algorithm.as_str() {
                "SHA-256" => Some(sha2::Sha256::digest(&data).to_vec()),
                "SHA-384" => Some(sha2::Sha384::digest(&data).to_vec()),
                "SHA-512" => Some(sha2::Sha512::digest(&data).to_vec()),
                _ => None,
            }
        })?;
        native.set("digest", digest)?;
        let install: Function = globals.get("__litInstall")?;
        let api: Object = install.call((transport, native))?;
        let run: Function = api.get("run")?;
        let deliver: Function = api.get("deliver")?;
        let params = ctx.json_parse(self.params.clone())?;
        let auth = ctx.json_parse(self.auth.clone())?;
        run.call::<_, Value>((self.code.as_str(), params, auth))?;
        Ok(deliver)
    }

    /// Defines the `ethers` getter; its loader evaluates the bundle as global (non-strict) code.
    fn install_ethers<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        let install: Function = ctx.eval(ethers::INSTALL)?;
        let load = match &self.ethers {
            Some(bundle) => {
                let bundle = bundle.clone();
                let load = Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
                    let mut options = EvalOptions::default();
                    options.strict = false;
                    ctx.eval_with_options::<Value, _>(bundle.expression(), options)
                })?;
                Value::from_function(load)
            }
            None => Value::new_null(ctx.clone()),
        };
        install.call::<_, ()>((load, ethers::MISSING))
    }

    /// The error an exception escaping to Rust means.
    fn classify(&self, ctx: &Ctx<'_>, e: rquickjs::Error) -> ActionError {
        if self.abort.load(Ordering::SeqCst) || Instant::now() >= self.deadline {
            return self.timeout();
        }
        if let rquickjs::Error::Exception = e {
            let v = ctx.catch();
            let (name, message, stack) = match v.as_object() {
                Some(o) => (
                    o.get::<_, String>("name").unwrap_or_default(),
                    o.get::<_, String>("message").unwrap_or_default(),
                    o.get::<_, String>("stack").unwrap_or_default(),
                ),
                None => (String::new(), format!("{v:?}"), String::new()),
            };
            return script_error(&name, &message, &stack, &self.limits);
        }
        if let rquickjs::Error::Allocation = e {
            return ActionError::MemoryLimit {
                limit_bytes: self.limits.memory_bytes,
            };
        }
        ActionError::Engine {
            engine: NAME,
            reason: e.to_string(),
        }
    }
}

/// `Name: message` of a thrown value (or its string form).
fn describe_value(v: &Value<'_>) -> String {
    match v.as_object() {
        Some(o) => {
            let name = o.get::<_, String>("name").unwrap_or_default();
            let message = o.get::<_, String>("message").unwrap_or_default();
            if name.is_empty() && message.is_empty() {
                "an object".to_owned()
            } else {
                format!("{name}: {message}")
            }
        }
        None => match v.as_string().and_then(|s| s.to_string().ok()) {
            Some(s) => s,
            None => format!("{v:?}"),
        },
    }
}
