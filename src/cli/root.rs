//! The root command: `-c/--config` plus flags bound to config keys (highest
//! precedence), then load → logging → runtime → [`crate::server::serve`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command as ClapCommand, FromArgMatches};

use crate::config::{self, ConfigError, env::parse_bool};

/// Root flags bound to config keys: (key, short, is_bool, help).
const ROOT_FLAGS: &[(&str, Option<char>, bool, &str)] = &[
    ("pid_file", None, false, "optional path to create PID file"),
    (
        "http_server.address",
        Some('a'),
        false,
        "interface address to listen on",
    ),
    (
        "http_server.port",
        Some('p'),
        false,
        "port to bind HTTP server to [default: 8000]",
    ),
    (
        "http_server.internal_address",
        None,
        false,
        "custom interface address to listen on for internal endpoints",
    ),
    (
        "http_server.internal_port",
        None,
        false,
        "custom port for internal endpoints",
    ),
    (
        "engine.type",
        None,
        false,
        "engine to use: memory or redis [default: memory]",
    ),
    ("broker.enabled", None, true, "enable broker"),
    (
        "broker.type",
        None,
        false,
        "broker to use: memory, redis or nats [default: memory]",
    ),
    (
        "presence_manager.enabled",
        None,
        true,
        "enable presence manager",
    ),
    (
        "presence_manager.type",
        None,
        false,
        "presence manager to use: memory or redis [default: memory]",
    ),
    (
        "map_broker.type",
        None,
        false,
        "map broker to use: memory, redis or postgres [default: memory]",
    ),
    (
        "log.level",
        None,
        false,
        "set the log level: trace, debug, info, warn, error or none [default: info]",
    ),
    (
        "log.file",
        None,
        false,
        "optional log file - if not specified logs go to STDOUT",
    ),
    ("debug.enabled", None, true, "enable debug endpoints"),
    ("admin.enabled", None, true, "enable admin web interface"),
    (
        "admin.external",
        None,
        true,
        "expose admin web interface on external port",
    ),
    (
        "prometheus.enabled",
        None,
        true,
        "enable Prometheus metrics endpoint",
    ),
    (
        "swagger.enabled",
        None,
        true,
        "enable Swagger UI endpoint describing server HTTP API",
    ),
    ("health.enabled", None, true, "enable health check endpoint"),
    (
        "uni_websocket.enabled",
        None,
        true,
        "enable unidirectional websocket endpoint",
    ),
    (
        "uni_sse.enabled",
        None,
        true,
        "enable unidirectional SSE (EventSource) endpoint",
    ),
    (
        "uni_http_stream.enabled",
        None,
        true,
        "enable unidirectional HTTP-streaming endpoint",
    ),
    (
        "sse.enabled",
        None,
        true,
        "enable bidirectional SSE (EventSource) endpoint (with emulation layer)",
    ),
    (
        "http_stream.enabled",
        None,
        true,
        "enable bidirectional HTTP-streaming endpoint (with emulation layer)",
    ),
    (
        "init.enabled",
        None,
        true,
        "enable connection init endpoint",
    ),
    (
        "client.insecure",
        None,
        true,
        "start in insecure client mode",
    ),
    ("http_api.insecure", None, true, "use insecure API mode"),
    (
        "http_api.external",
        None,
        true,
        "expose API handler on external port",
    ),
    (
        "admin.insecure",
        None,
        true,
        "use insecure admin mode – no auth required for admin socket",
    ),
    ("grpc_api.enabled", None, true, "enable GRPC API server"),
    (
        "grpc_api.port",
        None,
        false,
        "port to bind GRPC API server to [default: 10000]",
    ),
    (
        "uni_grpc.enabled",
        None,
        true,
        "enable unidirectional GRPC endpoint",
    ),
    (
        "uni_grpc.port",
        None,
        false,
        "port to bind unidirectional GRPC server to [default: 11000]",
    ),
];

/// `-c/--config` and the config-key flags given on the command line.
#[derive(Debug, Clone, Default)]
pub(super) struct RootFlags {
    config: PathBuf,
    /// (key path, raw text) of flags explicitly given.
    set: Vec<(String, String)>,
}

impl FromArgMatches for RootFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let config = m
            .get_one::<String>("config")
            .map_or_else(|| "config.json".into(), PathBuf::from);
        let set = ROOT_FLAGS
            .iter()
            .filter(|(key, ..)| m.value_source(key) == Some(ValueSource::CommandLine))
            .filter_map(|(key, ..)| Some(((*key).to_string(), m.get_one::<String>(key)?.clone())))
            .collect();
        Ok(Self { config, set })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

fn bool_text(s: &str) -> Result<String, String> {
    parse_bool(s)
        .map(|b| b.to_string())
        .ok_or_else(|| format!("invalid boolean value {s:?}"))
}

impl Args for RootFlags {
    fn augment_args(cmd: ClapCommand) -> ClapCommand {
        let mut cmd = cmd.arg(
            Arg::new("config")
                .short('c')
                .long("config")
                .value_name("FILE")
                .default_value("config.json")
                .help("path to config file"),
        );
        for (key, short, is_bool, help) in ROOT_FLAGS {
            let mut arg = Arg::new(*key).long(*key).help(*help).action(ArgAction::Set);
            if let Some(s) = short {
                arg = arg.short(*s);
            }
            arg = if *is_bool {
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL")
                    .value_parser(bool_text)
            } else {
                arg.value_name("VALUE")
            };
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: ClapCommand) -> ClapCommand {
        Self::augment_args(cmd)
    }
}

pub(super) fn run_server(root: &RootFlags) -> ExitCode {
    let loaded = match config::load(&root.config, &root.set) {
        Ok(l) => l,
        Err(e) => return server_error(&e),
    };
    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The OTLP exporter (when enabled) needs the runtime it will run on.
    let otel = {
        let _enter = runtime.enter();
        crate::middleware::otel::init(&loaded.config.opentelemetry)
    };
    let (otel, otel_warnings) = match otel {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_observability(&loaded.config.log, otel.as_ref()) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    for w in otel_warnings {
        tracing::warn!("{w}");
    }
    let path = root.config.display().to_string();
    if loaded.file_found {
        tracing::info!(path = %path, "using config file");
    } else {
        tracing::warn!(path = %path, "config file not found, continue using environment and flag options");
    }
    for key in &loaded.unknown_keys {
        tracing::warn!(key = %key, "unknown key found in the configuration file");
    }
    for var in &loaded.unknown_env {
        tracing::warn!(var = %var, "unknown var found in the environment");
    }
    for w in &loaded.no_effect {
        tracing::warn!("{w}");
    }
    for w in config::warnings(&loaded.config) {
        tracing::warn!("{w}");
    }
    let pid_file = loaded.config.pid_file.clone();
    if !pid_file.is_empty()
        && let Err(e) = std::fs::write(&pid_file, std::process::id().to_string())
    {
        eprintln!("error: writing pid file {pid_file}: {e}");
        return ExitCode::FAILURE;
    }
    let (path, flags) = (root.config.clone(), root.set.clone());
    let reload: crate::server::Reloader = Box::new(move || {
        config::load(&path, &flags)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    });
    let code = serve_on(&runtime, loaded.config, &pid_file, Some(reload));
    // Flush pending spans while the runtime the exporter uses still runs.
    drop(otel);
    code
}

/// How often (in task polls) a worker takes a task from the runtime's
/// shared queue before its own. A publication wakes every subscriber's
/// task at once; past 256 of them the worker's own queue overflows into
/// the shared one, and with tokio's default (adaptive, about every 31
/// polls) the tasks that land there wait while recently served ones are
/// woken and served again: in `bench/run.sh fanout` (1,000 subscribers)
/// the first subscriber got a publication within ~2 ms and the last after
/// ~70 ms. Taking from the shared queue every other poll keeps the service
/// close to first-come first-served: p99 fell from 129 to 37 ms in the
/// same window (bench/history/runs-1-8.md, run 8).
const GLOBAL_QUEUE_INTERVAL: u32 = 2;

fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
        .build()
}

/// Runs the server on a new multi-thread runtime until it stops.
pub(super) fn serve_blocking(
    config: config::Config,
    pid_file: &str,
    reload: Option<crate::server::Reloader>,
) -> ExitCode {
    match build_runtime() {
        Ok(runtime) => serve_on(&runtime, config, pid_file, reload),
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the server on `runtime` until it stops.
fn serve_on(
    runtime: &tokio::runtime::Runtime,
    config: config::Config,
    pid_file: &str,
    reload: Option<crate::server::Reloader>,
) -> ExitCode {
    let result = runtime.block_on(crate::server::serve_with_reload(config, reload));
    if !pid_file.is_empty() {
        let _ = std::fs::remove_file(pid_file);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn server_error(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Installs the global tracing subscriber at `log.level` (`none` = no
/// logging), writing to stdout or appending to `log.file`.
pub(super) fn init_logging(log: &config::Log) -> Result<(), String> {
    init_observability(log, None)
}

/// [`init_logging`] plus, when `otel` is given, an OpenTelemetry layer
/// exporting the request spans. Log output is unchanged: request spans
/// (target [`crate::middleware::trace::TARGET`]) never show in log lines.
pub(super) fn init_observability(
    log: &config::Log,
    otel: Option<&crate::middleware::otel::OtelGuard>,
) -> Result<(), String> {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let level = match log.level.as_str() {
        "none" => None,
        "trace" => Some(LevelFilter::TRACE),
        "debug" => Some(LevelFilter::DEBUG),
        "warn" => Some(LevelFilter::WARN),
        "error" | "fatal" => Some(LevelFilter::ERROR),
        _ => Some(LevelFilter::INFO),
    };
    let mut layers: Vec<Boxed> = Vec::new();
    if let Some(level) = level {
        // The level hint matters: without it the combined filter has none,
        // the global maximum level becomes TRACE and every `log::trace!` of
        // the WebSocket library goes through the dispatcher (seen at 2.4 %
        // of server CPU in the fan-out benchmark).
        let not_request_span = filter_fn(|meta| {
            !(meta.is_span() && meta.target() == crate::middleware::trace::TARGET)
        })
        .with_max_level_hint(level);
        let filter = level.and(not_request_span);
        let fmt = tracing_subscriber::fmt::layer().with_target(false);
        let layer: Boxed = if log.file.is_empty() {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            fmt.with_ansi(ansi).with_filter(filter).boxed()
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log.file)
                .map_err(|e| format!("log.file: cannot open {}: {e}", log.file))?;
            fmt.with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .with_filter(filter)
                .boxed()
        };
        layers.push(layer);
    }
    if let Some(guard) = otel {
        layers.push(guard.layer().with_filter(LevelFilter::INFO).boxed());
    }
    if layers.is_empty() {
        return Ok(());
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("initializing logging: {e}"))
}
