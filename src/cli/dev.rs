//! `rotor dev`: a server on a built-in development config, for trying Rotor
//! without writing a config file. It listens on 127.0.0.1 only, uses the
//! memory engine and a fresh random HMAC secret, opens channels without a
//! namespace to every authenticated client (with history, recovery,
//! presence and join/leave), and prints tokens to connect with.

use std::process::ExitCode;

use crate::config::{self, Config};

/// The development config.
pub(super) fn dev_config(port: u16, secret: String) -> Config {
    let mut cfg = Config::default();
    cfg.http_server.address = "127.0.0.1".into();
    cfg.http_server.port = port;
    cfg.client.token.hmac_secret_key = secret;
    cfg.client.allowed_origins = vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()];
    cfg.health.enabled = true;
    cfg.prometheus.enabled = true;
    cfg.channel.without_namespace = config::ChannelOptions {
        allow_subscribe_for_client: true,
        allow_publish_for_subscriber: true,
        allow_presence_for_subscriber: true,
        allow_history_for_subscriber: true,
        presence: true,
        join_leave: true,
        force_push_join_leave: true,
        history_size: 100,
        history_ttl: config::Duration::from_secs(300),
        force_recovery: true,
        ..Default::default()
    };
    cfg
}

pub(super) fn run(port: u16) -> ExitCode {
    let secret = super::generate::random_secret(32);
    let cfg = dev_config(port, secret.clone());
    if let Err(e) = config::validate(&cfg) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = super::root::init_logging(&cfg.log) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let mut tokens = Vec::new();
    for user in ["dev", "dev2"] {
        match crate::auth::sign_hs256(&secret, &serde_json::json!({"sub": user, "exp": exp})) {
            Ok(t) => tokens.push((user, t)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "Rotor {} development server: memory engine, built-in config, nothing written to disk.",
        crate::node::VERSION
    );
    println!("  WebSocket endpoint: ws://127.0.0.1:{port}/connection/websocket");
    println!("  Health: http://127.0.0.1:{port}/health   Metrics: http://127.0.0.1:{port}/metrics");
    println!("  Any channel without a namespace (e.g. \"news\") accepts subscribe and publish.");
    for (user, t) in &tokens {
        println!("  Connection token for user {user:?} (valid 1 hour): {t}");
    }
    println!(
        "  For a real setup: `rotor genconfig` writes config.json; run `rotor --config config.json`."
    );
    super::root::serve_blocking(cfg, "")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_config_is_valid() {
        let cfg = super::dev_config(8000, "s".into());
        assert!(crate::config::validate(&cfg).is_ok());
    }
}
