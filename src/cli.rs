//! The command line, in Centrifugo v6's shape: the root command runs the
//! server (`-c/--config` plus flags bound to config keys, highest
//! precedence), subcommands are the helper tools (`version`, `genconfig`,
//! `checkconfig`, `defaultconfig`, `defaultenv`, token tools, `serve`).
//!
//! Like Centrifugo, subcommands print their results and errors to stdout and
//! exit with status 1 on failure; the root command prints `error: …` to
//! stderr.

mod dev;
mod generate;
mod root;
mod serve;
mod tokens;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Loaded};
use root::{RootFlags, run_server};

/// Rotor – real-time messaging server (Centrifugo v6 compatible).
#[derive(Debug, Parser)]
#[command(
    name = "rotor",
    about = "Rotor – real-time messaging server (Centrifugo v6 compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    root: RootFlags,
}

/// Options shared by `gentoken` and `gensubtoken`.
#[derive(Debug, Clone, clap::Args)]
struct TokenArgs {
    /// path to config file
    #[arg(short = 'c', long = "config", default_value = "config.json")]
    config: PathBuf,
    /// user ID, by default anonymous
    #[arg(short = 'u', long = "user", default_value = "")]
    user: String,
    /// token TTL in seconds, use -1 for token without expiration
    #[arg(
        short = 't',
        long = "ttl",
        default_value_t = 604_800,
        allow_negative_numbers = true
    )]
    ttl: i64,
    /// only output the token without anything else
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rotor version information
    Version,
    /// Generate minimal configuration file to start with
    Genconfig {
        /// path to output config file
        #[arg(short = 'c', long = "config", default_value = "config.json")]
        config: PathBuf,
    },
    /// Check configuration file
    Checkconfig {
        /// path to config file to check
        #[arg(short = 'c', long = "config", default_value = "config.json")]
        config: PathBuf,
        /// strict check - fail on unknown fields
        #[arg(short = 's', long = "strict")]
        strict: bool,
    },
    /// Generate full configuration file with defaults
    Defaultconfig {
        /// path to default config file to generate
        #[arg(short = 'c', long = "config", default_value = "config.json")]
        config: PathBuf,
        /// path to the base config file to use
        #[arg(short = 'b', long = "base")]
        base: Option<PathBuf>,
        /// dry run mode (do not write file and just print generated config to stdout)
        #[arg(short = 'd', long = "dry-run")]
        dry_run: bool,
    },
    /// Generate full environment var list with defaults
    Defaultenv {
        /// path to the base config file to use
        #[arg(short = 'b', long = "base")]
        base: Option<PathBuf>,
        /// only output env vars for keys set to non-zero values in the base config
        #[arg(long = "base-non-zero-only")]
        base_non_zero_only: bool,
    },
    /// Configuration documentation (not available in Rotor)
    Configdoc {
        #[arg(short = 'm', long = "markdown")]
        markdown: bool,
        #[arg(short = 's', long = "section")]
        section: Option<String>,
        #[arg(short = 'p', long = "port", default_value_t = 6060)]
        port: u16,
        #[arg(short = 'l', long = "base-level", default_value_t = 0)]
        base_level: u32,
    },
    /// Generate sample connection JWT for user
    Gentoken(TokenArgs),
    /// Generate sample subscription JWT for user
    Gensubtoken {
        #[command(flatten)]
        args: TokenArgs,
        /// channel
        #[arg(short = 's', long = "channel", default_value = "")]
        channel: String,
    },
    /// Check connection JWT
    Checktoken {
        /// path to config file
        #[arg(short = 'c', long = "config", default_value = "config.json")]
        config: PathBuf,
        token: Option<String>,
    },
    /// Check subscription JWT
    Checksubtoken {
        /// path to config file
        #[arg(short = 'c', long = "config", default_value = "config.json")]
        config: PathBuf,
        token: Option<String>,
    },
    /// Run a development server on a built-in config (memory engine, a
    /// fresh HMAC secret, open namespace) and print test tokens
    Dev {
        /// port to serve on (127.0.0.1 only)
        #[arg(short = 'p', long = "port", default_value_t = 8000)]
        port: u16,
    },
    /// Run static file server (for development only)
    Serve {
        /// path to directory
        #[arg(short = 'd', long = "dir", default_value = "./")]
        dir: PathBuf,
        /// port to serve on
        #[arg(short = 'p', long = "port", default_value_t = 3000)]
        port: u16,
        /// interface to serve on (default: all interfaces)
        #[arg(short = 'a', long = "address", default_value = "")]
        address: String,
    },
}

/// Parses the command line and runs the command; the process exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        None => run_server(&cli.root),
        Some(Command::Version) => {
            println!(
                "Rotor v{} (Centrifugo v6 compatible)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(Command::Genconfig { config }) => generate::genconfig(&config),
        Some(Command::Checkconfig { config, strict }) => checkconfig(&config, strict),
        Some(Command::Defaultconfig {
            config,
            base,
            dry_run,
        }) => generate::defaultconfig(&config, &base.unwrap_or_default(), dry_run),
        Some(Command::Defaultenv {
            base,
            base_non_zero_only,
        }) => generate::defaultenv(&base.unwrap_or_default(), base_non_zero_only),
        Some(Command::Configdoc { .. }) => {
            println!("error: configdoc is not available in Rotor, see Centrifugo v6 documentation");
            ExitCode::FAILURE
        }
        Some(Command::Gentoken(args)) => tokens::gentoken(&args, None),
        Some(Command::Gensubtoken { args, channel }) => tokens::gentoken(&args, Some(&channel)),
        Some(Command::Checktoken { config, token }) => {
            tokens::checktoken(&config, token.as_deref(), false)
        }
        Some(Command::Checksubtoken { config, token }) => {
            tokens::checktoken(&config, token.as_deref(), true)
        }
        Some(Command::Dev { port }) => dev::run(port),
        Some(Command::Serve { dir, port, address }) => serve::serve(&dir, port, &address),
    }
}

/// Prints `message` to stdout and returns failure (Centrifugo's style).
fn fail(message: impl std::fmt::Display) -> ExitCode {
    println!("{message}");
    ExitCode::FAILURE
}

/// Reads the config (file + env, no flags) for a subcommand, without
/// validation; prints `error getting config: …` on failure.
fn read_config(path: &Path) -> Result<Loaded, ExitCode> {
    config::read(path, &[]).map_err(|e| {
        let what = if e.is_validation() {
            "validating"
        } else {
            "getting"
        };
        fail(format!("error {what} config: {e}"))
    })
}

fn checkconfig(path: &Path, strict: bool) -> ExitCode {
    let loaded = match read_config(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if !loaded.file_found {
        return fail("config file not found");
    }
    for w in &loaded.no_effect {
        eprintln!("warning: {w}");
    }
    if let Err(e) = config::validate(&loaded.config) {
        return fail(format!("error validating config: {e}"));
    }
    if let Err(e) = crate::settings::Settings::resolve(&loaded.config) {
        return fail(format!("error validating config: {e}"));
    }
    if let Err(e) = crate::server::tls::check(&loaded.config) {
        return fail(format!("error validating config: {e}"));
    }
    if strict && !loaded.unknown_keys.is_empty() {
        return fail(format!(
            "unknown keys in config: {}",
            loaded.unknown_keys.join(", ")
        ));
    }
    ExitCode::SUCCESS
}
