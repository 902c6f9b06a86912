//! Loader tests: formats, precedence, env typing, named arrays, `.env`,
//! unknown keys/env and key-naming type errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::env::EnvVars;
use super::*;

const REAL_WORLD: &str = include_str!("../../tests/configs/centrifugo_test.json");

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write temp config");
    path
}

fn with_env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
    }
}

fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn load_env(path: &Path, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_with_env(path, &[], &with_env(env))
}

/// The real-world config less the map and shared poll subscriptions Rotor
/// refuses until they are built.
fn real_world_without_refused() -> String {
    let mut v: serde_json::Value = serde_json::from_str(REAL_WORLD).expect("json");
    if let Some(items) = v["channel"]["namespaces"].as_array_mut() {
        for item in items {
            if let Some(m) = item.as_object_mut() {
                for key in ["subscription_type", "map", "shared_poll"] {
                    m.remove(key);
                }
            }
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("shared_poll");
    }
    v.to_string()
}

#[test]
fn real_world_config_refuses_what_is_not_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "config.json", REAL_WORLD);
    let err = load_env(&path, &[]).expect_err("map and shared poll are refused");
    assert!(err.is_validation());
    let text = err.to_string();
    for key in [
        "channel.namespaces[0].subscription_type",
        "channel.namespaces[0].map.mode",
        "channel.namespaces[3].shared_poll.proxy_name",
        "shared_poll.hmac_secret_key",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
    assert!(!text.contains("delta"), "delta is built: {text}");
}

#[test]
fn real_world_config_loads_without_unknown_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "config.json", &real_world_without_refused());
    let loaded = load_env(&path, &[]).expect("real-world config loads");
    assert!(
        !loaded.no_effect.iter().any(|w| w.contains("delta")),
        "delta is built: {:?}",
        loaded.no_effect
    );
    assert!(loaded.file_found);
    assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    let cfg = &loaded.config;
    assert!(cfg.client.insecure);
    assert_eq!(cfg.client.concurrency, 8);
    assert_eq!(cfg.log.level, "trace");
    assert_eq!(cfg.channel.namespaces.len(), 4);
    assert_eq!(
        cfg.channel.namespaces[2]
            .options
            .client_publish_debounce_interval,
        Duration::from_millis(50)
    );
    assert_eq!(
        cfg.channel.without_namespace.history_ttl,
        Duration::from_secs(300)
    );
    assert_eq!(
        cfg.channel.without_namespace.allowed_delta_types,
        vec!["fossil".to_string()]
    );
}

#[test]
fn json_yaml_toml_give_equal_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = r#"{"client": {"ping_interval": "10s", "allowed_origins": ["http://a"], "token": {"hmac_secret_key": "k"}},
        "http_server": {"port": 9000}, "engine": {"redis": {"address": ["redis://x:6379"]}},
        "channel": {"namespaces": [{"name": "chat", "presence": true, "history_size": 10, "history_ttl": "60s"}]}}"#;
    let yaml = "client:\n  ping_interval: 10s\n  allowed_origins: [\"http://a\"]\n  token:\n    hmac_secret_key: k\n\
                http_server:\n  port: 9000\nengine:\n  redis:\n    address: [\"redis://x:6379\"]\n\
                channel:\n  namespaces:\n    - name: chat\n      presence: true\n      history_size: 10\n      history_ttl: 60s\n";
    let toml = "[client]\nping_interval = \"10s\"\nallowed_origins = [\"http://a\"]\n[client.token]\nhmac_secret_key = \"k\"\n\
                [http_server]\nport = 9000\n[engine.redis]\naddress = [\"redis://x:6379\"]\n\
                [[channel.namespaces]]\nname = \"chat\"\npresence = true\nhistory_size = 10\nhistory_ttl = \"60s\"\n";
    let a = load_env(&write(&dir, "c.json", json), &[])
        .expect("json")
        .config;
    let b = load_env(&write(&dir, "c.yaml", yaml), &[])
        .expect("yaml")
        .config;
    let c = load_env(&write(&dir, "c.toml", toml), &[])
        .expect("toml")
        .config;
    let d = load_env(&write(&dir, "c.yml", yaml), &[])
        .expect("yml")
        .config;
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a, d);
    assert_eq!(a.http_server.port, 9000);
    assert_eq!(a.client.ping_interval, Duration::from_secs(10));
    assert_eq!(a.channel.namespaces[0].options.history_size, 10);
}

#[test]
fn precedence_flag_over_env_over_file_over_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        &dir,
        "config.json",
        r#"{"http_server": {"port": 8001}, "log": {"level": "debug"}, "client": {"channel_limit": 5}}"#,
    );
    let env = [
        ("CENTRIFUGO_HTTP_SERVER_PORT", "8002"),
        ("CENTRIFUGO_LOG_LEVEL", "warn"),
    ];
    let f = flags(&[("http_server.port", "8003")]);
    let cfg = load_with_env(&path, &f, &with_env(&env))
        .expect("load")
        .config;
    assert_eq!(cfg.http_server.port, 8003, "flag wins");
    assert_eq!(cfg.log.level, "warn", "env beats file");
    assert_eq!(cfg.client.channel_limit, 5, "file beats default");
    assert_eq!(cfg.client.queue_max_size, 1_048_576, "default");
}

#[test]
fn env_typing() {
    let missing = Path::new("/nonexistent/rotor/config.json");
    let env = [
        ("CENTRIFUGO_CLIENT_INSECURE", "T"),
        ("CENTRIFUGO_HTTP_API_INSECURE", "1"),
        ("CENTRIFUGO_CLIENT_CHANNEL_LIMIT", "64"),
        ("CENTRIFUGO_CLIENT_PING_INTERVAL", "1m30s"),
        (
            "CENTRIFUGO_CLIENT_ALLOWED_ORIGINS",
            "http://a.com  https://*.b.com",
        ),
        ("CENTRIFUGO_ENGINE_REDIS_ADDRESS", "redis://r:6379"),
        ("CENTRIFUGO_ENGINE_REDIS_PREFIX", "p"),
        (
            "CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT",
            "http://backend/connect",
        ),
        ("CENTRIFUGO_CLIENT_PROXY_CONNECT_ENABLED", "true"),
        ("CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY", "s3cret"),
        ("CENTRIFUGO_LOG_FILE", ""),
    ];
    let loaded = load_env(missing, &env).expect("load");
    assert!(!loaded.file_found);
    let cfg = loaded.config;
    assert!(cfg.client.insecure && cfg.http_api.insecure);
    assert_eq!(cfg.client.channel_limit, 64);
    assert_eq!(cfg.client.ping_interval, Duration::from_secs(90));
    assert_eq!(
        cfg.client.allowed_origins,
        vec!["http://a.com".to_string(), "https://*.b.com".to_string()]
    );
    assert_eq!(cfg.engine.redis.prefix, "p");
    assert_eq!(cfg.engine.redis.address, vec!["redis://r:6379".to_string()]);
    assert_eq!(cfg.client.proxy.connect.endpoint, "http://backend/connect");
    assert!(cfg.client.proxy.connect.enabled);
    assert_eq!(cfg.client.token.hmac_secret_key, "s3cret");
    assert_eq!(cfg.log.file, "", "empty value means unset");

    let bad = |name: &str, value: &str| {
        load_env(missing, &[(name, value)])
            .expect_err("bad env")
            .to_string()
    };
    assert!(bad("CENTRIFUGO_CLIENT_INSECURE", "yes").starts_with("client.insecure: "));
    assert!(
        bad("CENTRIFUGO_CLIENT_CHANNEL_LIMIT", "many").contains("CENTRIFUGO_CLIENT_CHANNEL_LIMIT")
    );
    assert!(bad("CENTRIFUGO_CLIENT_PING_INTERVAL", "25").starts_with("client.ping_interval: "));
    assert!(bad("CENTRIFUGO_ENGINE_REDIS_DB", "one").starts_with("engine.redis.db: "));
}

#[test]
fn named_namespaces_from_env_like_centrifuge_python() {
    let env = [
        ("CENTRIFUGO_CHANNEL_NAMESPACES", "example my-ns.v2"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_PRESENCE", "true"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_JOIN_LEAVE", "true"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_HISTORY_SIZE", "10"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_HISTORY_TTL", "300s"),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_FORCE_RECOVERY",
            "true",
        ),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_ALLOW_SUBSCRIBE_FOR_CLIENT",
            "true",
        ),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_ALLOW_PUBLISH_FOR_SUBSCRIBER",
            "true",
        ),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_EXAMPLE_ALLOWED_DELTA_TYPES",
            "fossil",
        ),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_MY_NS_V2_PRESENCE", "1"),
        ("CENTRIFUGO_RPC_NAMESPACES", "api"),
        ("CENTRIFUGO_RPC_NAMESPACES_API_PROXY_NAME", "default"),
    ];
    let cfg = load_env(Path::new("/nonexistent.json"), &env)
        .expect("load")
        .config;
    let ns = &cfg.channel.namespaces;
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[0].name, "example");
    let o = &ns[0].options;
    assert!(o.presence && o.join_leave && o.force_recovery && o.allow_subscribe_for_client);
    assert!(o.allow_publish_for_subscriber);
    assert_eq!(o.history_size, 10);
    assert_eq!(o.history_ttl, Duration::from_secs(300));
    assert_eq!(o.allowed_delta_types, vec!["fossil".to_string()]);
    assert_eq!(ns[1].name, "my-ns.v2");
    assert!(ns[1].options.presence);
    assert_eq!(cfg.rpc.namespaces[0].name, "api");
    assert_eq!(cfg.rpc.namespaces[0].options.proxy_name, "default");
}

#[test]
fn named_arrays_as_json_and_item_env_over_file_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        &dir,
        "c.json",
        r#"{"channel": {"namespaces": [{"name": "chat", "presence": false}]},
        "proxies": [{"name": "p1", "endpoint": "http://a", "timeout": "1s"}]}"#,
    );
    let env = [
        ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
        ("CENTRIFUGO_PROXIES_P1_TIMEOUT", "3s"),
    ];
    let cfg = load_env(&path, &env).expect("load").config;
    assert!(cfg.channel.namespaces[0].options.presence);
    assert_eq!(cfg.proxies[0].timeout, Duration::from_secs(3));

    let env = [(
        "CENTRIFUGO_CHANNEL_NAMESPACES",
        r#"[{"name": "aa", "history_size": 5, "history_ttl": "5s"}]"#,
    )];
    let cfg = load_env(&path, &env).expect("load").config;
    assert_eq!(cfg.channel.namespaces.len(), 1, "env replaces file array");
    assert_eq!(cfg.channel.namespaces[0].options.history_size, 5);
}

#[test]
fn dotenv_fills_unset_vars_only() {
    let mut env = EnvVars::from_pairs([("CENTRIFUGO_HTTP_SERVER_PORT", "9001")]);
    env.add_dotenv("# local dev\nCENTRIFUGO_HTTP_SERVER_PORT=1\nCENTRIFUGO_CLIENT_INSECURE=\"true\"\nexport CENTRIFUGO_LOG_LEVEL='debug'\n");
    let lookup = |name: &str| env.get(name);
    let cfg = load_with_env(Path::new("/nonexistent.json"), &[], &lookup)
        .expect("load")
        .config;
    assert_eq!(cfg.http_server.port, 9001, "real env wins over .env");
    assert!(cfg.client.insecure);
    assert_eq!(cfg.log.level, "debug");
}

#[test]
fn engine_types_are_checked_when_loading() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, key) in [
        (r#"{"engine": {"type": "etcd"}}"#, "engine.type"),
        (r#"{"broker": {"type": "kafka"}}"#, "broker.type"),
        (
            r#"{"presence_manager": {"type": "nats"}}"#,
            "presence_manager.type",
        ),
        (r#"{"engine": {"redis": {"db": -1}}}"#, "engine.redis.db"),
        (
            r#"{"broker": {"nats": {"write_timeout": "soon"}}}"#,
            "broker.nats.write_timeout",
        ),
        (
            r#"{"http_api": {"error_mode": "custom"}}"#,
            "http_api.error_mode",
        ),
        (
            r#"{"channel": {"publication_data_format": "xml"}}"#,
            "channel.publication_data_format",
        ),
        (
            r#"{"channel": {"without_namespace": {"force_recovery_mode": "fast"}}}"#,
            "channel.without_namespace.force_recovery_mode",
        ),
        (
            r#"{"channel": {"namespaces": [{"name": "ns", "publication_data_format": "xml"}]}}"#,
            "channel.namespaces[0].publication_data_format",
        ),
    ] {
        let path = write(&dir, "c.json", text);
        let err = load_env(&path, &[]).expect_err(text);
        assert_eq!(err.key(), key, "{text}: {err}");
    }
    let path = write(
        &dir,
        "c.json",
        r#"{"engine": {"type": "redis", "redis": {"address": "localhost:6380"}},
        "broker": {"type": "postgres"}}"#,
    );
    let cfg = load_env(&path, &[])
        .expect("a disabled broker type is fine")
        .config;
    assert_eq!(cfg.engine.kind, EngineType::Redis);
    assert_eq!(cfg.engine.redis.address, vec!["localhost:6380".to_string()]);
    assert_eq!(cfg.broker.kind, BrokerType::Postgres);
}

#[test]
fn unknown_keys_and_env_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        &dir,
        "c.json",
        r#"{"bogus": 1, "client": {"tokn": {}, "proxy": {"anything": 1}},
        "engine": {"redis": {"free": "form"}}, "channel": {"namespaces": [{"name": "aa", "presense": true, "map": {"x": 1}}]},
        "rpc": {"namespaces": [{"name": "rr", "what": 1}]}, "proxies": [{"name": "pp", "whatever": 1, "endpoint": "http://x"}]}"#,
    );
    let env = EnvVars::from_pairs([
        ("CENTRIFUGO_CLIENT_INSECURE", "true"),
        ("CENTRIFUGO_CLIENT_INSECUR", "true"),
        ("CENTRIFUGO_VAR_SECRET", "x"),
        ("CENTRIFUGO_SERVICE_HOST", "10.0.0.1"),
        ("CENTRIFUGO_PORT_8000_TCP", "tcp://10.0.0.1:8000"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_AA_PRESENCE", "true"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_BB_PRESENCE", "true"),
        ("HOME", "/root"),
    ]);
    let loaded = load_from(&path, &[], &env).expect("load");
    assert_eq!(
        loaded.unknown_keys,
        vec![
            "bogus",
            "channel.namespaces[0].map.x",
            "channel.namespaces[0].presense",
            "client.proxy.anything",
            "client.tokn",
            "engine.redis.free",
            "proxies[0].whatever",
            "rpc.namespaces[0].what"
        ]
    );
    assert_eq!(
        loaded.unknown_env,
        vec![
            "CENTRIFUGO_CHANNEL_NAMESPACES_BB_PRESENCE",
            "CENTRIFUGO_CLIENT_INSECUR"
        ]
    );
}

#[test]
fn type_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = |text: &str| {
        let path = write(&dir, "t.json", text);
        let e = load_env(&path, &[]).expect_err("type error");
        (e.key().to_string(), e.to_string())
    };
    assert_eq!(
        err(r#"{"client": {"ping_interval": "abc"}}"#).0,
        "client.ping_interval"
    );
    assert_eq!(
        err(r#"{"http_server": {"port": "x"}}"#).0,
        "http_server.port"
    );
    assert_eq!(
        err(
            r#"{"channel": {"namespaces": [{"name": "ab"}, {"name": "cd", "history_size": "x"}]}}"#
        )
        .0,
        "channel.namespaces[1].history_size"
    );
    assert_eq!(
        err(r#"{"channel": {"namespaces": [{"name": 5}]}}"#).0,
        "channel.namespaces[0].name"
    );
    assert_eq!(
        err(r#"{"client": {"subscription_token": {"enabled": true, "audience": 1}}}"#).0,
        "client.subscription_token.audience"
    );
    assert_eq!(
        err(r#"{"rpc": {"namespaces": [{"name": "ab", "proxy_enabled": "x"}]}}"#).0,
        "rpc.namespaces[0].proxy_enabled"
    );
    let (key, text) = err(r#"{"client": {"channel_limit": -1}}"#);
    assert_eq!(key, "client.channel_limit");
    assert!(text.starts_with("client.channel_limit: "), "{text}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "broken.json", "{");
    let e = load_env(&path, &[]).expect_err("parse error");
    assert!(e.to_string().contains("broken.json"), "{e}");
    let path = write(&dir, "broken.yaml", "a: [");
    assert!(
        load_env(&path, &[])
            .expect_err("yaml")
            .to_string()
            .contains("broken.yaml")
    );
    let path = write(&dir, "config.ini", "a=1");
    assert!(
        load_env(&path, &[])
            .expect_err("ext")
            .to_string()
            .contains("unsupported")
    );
}

#[test]
fn flags_are_typed_and_checked() {
    let missing = Path::new("/nonexistent.json");
    let f = flags(&[
        ("client.insecure", "true"),
        ("grpc_api.port", "10001"),
        ("graphite.enabled", "true"),
        ("log.level", "error"),
    ]);
    let loaded = load_with_env(missing, &f, &with_env(&[])).expect("load");
    assert!(
        loaded.no_effect[0].starts_with("graphite.enabled is set but has no effect"),
        "{:?}",
        loaded.no_effect
    );
    let cfg = loaded.config;
    assert!(cfg.client.insecure);
    assert_eq!(cfg.grpc_api.port, 10001);
    assert_eq!(cfg.log.level, "error");
    let e = load_with_env(missing, &flags(&[("no.such", "1")]), &with_env(&[]))
        .expect_err("unknown flag");
    assert_eq!(e.key(), "no.such");
    let e = load_with_env(
        missing,
        &flags(&[("http_server.port", "http")]),
        &with_env(&[]),
    )
    .expect_err("bad flag");
    assert_eq!(e.key(), "http_server.port");
}

#[test]
fn known_env_vars_cover_items() {
    let mut value = default_value();
    value["channel"]["namespaces"] = serde_json::json!([{"name": "chat"}]);
    let vars: BTreeMap<String, String> = known_env_vars(&value)
        .into_iter()
        .map(|(v, p, _)| (v, p))
        .collect();
    assert_eq!(
        vars.get("CENTRIFUGO_CLIENT_PING_INTERVAL")
            .map(String::as_str),
        Some("client.ping_interval")
    );
    assert_eq!(
        vars.get("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_TTL")
            .map(String::as_str),
        Some("channel.namespaces[0].history_ttl")
    );
}

#[test]
fn rendered_defaults_round_trip_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let value = default_value();
    for (name, format) in [
        ("d.json", formats::Format::Json),
        ("d.yaml", formats::Format::Yaml),
        ("d.toml", formats::Format::Toml),
    ] {
        let text = formats::render(&value, format).expect("render");
        let loaded = load_env(&write(&dir, name, &text), &[]).expect("load rendered defaults");
        assert_eq!(loaded.config, Config::default(), "{name}");
        assert!(
            loaded.unknown_keys.is_empty(),
            "{name}: {:?}",
            loaded.unknown_keys
        );
    }
}
