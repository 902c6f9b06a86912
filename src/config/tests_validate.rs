//! Validation tests: every rule's error names its key.

use serde_json::json;

use super::*;

fn ns(name: &str) -> Namespace {
    Namespace {
        name: name.into(),
        options: ChannelOptions::default(),
    }
}

/// The key and message of the validation error after `change`.
fn error_of(change: impl FnOnce(&mut Config)) -> (String, String) {
    let mut cfg = Config::default();
    change(&mut cfg);
    let e = validate(&cfg).expect_err("config must be invalid");
    assert!(e.is_validation());
    (e.key().to_string(), e.to_string())
}

fn key_of(change: impl FnOnce(&mut Config)) -> String {
    error_of(change).0
}

#[test]
fn defaults_are_valid() {
    assert!(validate(&Config::default()).is_ok());
    assert!(warnings(&Config::default()).is_empty());
}

#[test]
fn log_level_and_ping() {
    assert_eq!(key_of(|c| c.log.level = "verbose".into()), "log.level");
    for level in ["none", "trace", "debug", "info", "warn", "error"] {
        let mut c = Config::default();
        c.log.level = level.into();
        assert!(validate(&c).is_ok(), "{level}");
    }
    let (key, text) = error_of(|c| c.client.pong_timeout = Duration::from_secs(30));
    assert_eq!(key, "client.ping_interval");
    assert!(
        text.starts_with("client.ping_interval: must be greater than client.pong_timeout"),
        "{text}"
    );
    let mut c = Config::default();
    c.client.pong_timeout = Duration::from_secs(30);
    c.client.ping_interval = Duration::ZERO;
    assert!(validate(&c).is_ok(), "zero disables the check");
}

#[test]
fn token_rules() {
    assert_eq!(
        key_of(|c| {
            c.client.token.audience = "a".into();
            c.client.token.audience_regex = "a.*".into();
        }),
        "client.token.audience_regex"
    );
    assert_eq!(
        key_of(|c| {
            c.client.subscription_token.token.issuer = "i".into();
            c.client.subscription_token.token.issuer_regex = "i.*".into();
        }),
        "client.subscription_token.issuer_regex"
    );
    assert_eq!(
        key_of(|c| c.client.token.user_id_claim = "user-id".into()),
        "client.token.user_id_claim"
    );
    assert_eq!(
        key_of(|c| c.client.token.issuer_regex = "(".into()),
        "client.token.issuer_regex"
    );
    assert_eq!(
        key_of(|c| c.client.subscription_token.token.audience_regex = "[".into()),
        "client.subscription_token.audience_regex"
    );
}

#[test]
fn namespace_names() {
    assert_eq!(
        key_of(|c| c.channel.namespaces = vec![ns("a")]),
        "channel.namespaces[0].name"
    );
    assert_eq!(
        key_of(|c| c.channel.namespaces = vec![ns("bad name")]),
        "channel.namespaces[0].name"
    );
    let (key, text) = error_of(|c| c.channel.namespaces = vec![ns("chat"), ns("chat")]);
    assert_eq!(key, "channel.namespaces[1].name");
    assert!(text.contains("unique"), "{text}");
    let mut c = Config::default();
    c.channel.namespaces = vec![ns("my-ns.v1_x")];
    assert!(validate(&c).is_ok());
    let rpc = |name: &str| RpcNamespace {
        name: name.into(),
        options: RpcOptions::default(),
    };
    assert_eq!(
        key_of(|c| c.rpc.namespaces = vec![rpc("x")]),
        "rpc.namespaces[0].name"
    );
    assert_eq!(
        key_of(|c| c.rpc.namespaces = vec![rpc("xx"), rpc("xx")]),
        "rpc.namespaces[1].name"
    );
}

#[test]
fn channel_option_rules() {
    let wn = "channel.without_namespace";
    let opt = |f: fn(&mut ChannelOptions)| key_of(move |c| f(&mut c.channel.without_namespace));
    assert_eq!(opt(|o| o.history_size = 10), format!("{wn}.history_ttl"));
    assert_eq!(
        opt(|o| o.history_ttl = Duration::from_secs(10)),
        format!("{wn}.history_size")
    );
    assert_eq!(
        opt(|o| {
            o.history_size = 1;
            o.history_ttl = Duration::from_millis(1500);
        }),
        format!("{wn}.history_ttl")
    );
    assert_eq!(
        opt(|o| {
            o.history_size = 1;
            o.history_ttl = Duration::from_secs(100);
            o.history_meta_ttl = Duration::from_secs(50);
        }),
        format!("{wn}.history_ttl")
    );
    assert_eq!(
        opt(|o| o.force_recovery = true),
        format!("{wn}.force_recovery")
    );
    assert_eq!(
        opt(|o| o.auto_cache_recover = true),
        format!("{wn}.auto_cache_recover")
    );
    assert_eq!(
        opt(|o| o.allowed_delta_types = vec!["xdelta".into()]),
        format!("{wn}.allowed_delta_types")
    );
    assert_eq!(
        opt(|o| o.channel_regex = "(".into()),
        format!("{wn}.channel_regex")
    );
    assert_eq!(
        opt(|o| {
            o.subscribe_stream_proxy_enabled = true;
            o.subscribe_proxy_enabled = true;
        }),
        format!("{wn}.subscribe_stream_proxy_enabled")
    );
    assert_eq!(
        opt(|o| o.subscribe_proxy_name = "nope".into()),
        format!("{wn}.subscribe_proxy_name")
    );
    assert_eq!(
        opt(|o| o.publish_proxy_enabled = true),
        "channel.proxy.publish.endpoint"
    );

    let mut c = Config::default();
    let o = &mut c.channel.without_namespace;
    o.history_size = 10;
    o.history_ttl = Duration::from_secs(60);
    o.force_recovery = true;
    o.force_recovery_mode = RecoveryMode::Cache;
    o.auto_cache_recover = true;
    assert!(validate(&c).is_ok());

    let mut in_ns = ns("chat");
    in_ns.options.history_size = 5;
    assert_eq!(
        key_of(move |c| c.channel.namespaces = vec![ns("news"), in_ns]),
        "channel.namespaces[1].history_ttl"
    );
}

#[test]
fn global_channel_and_api_modes() {
    assert_eq!(key_of(|c| c.channel.max_length = 0), "channel.max_length");
    assert_eq!(
        key_of(|c| c.channel.history_meta_ttl = Duration::from_millis(10_500)),
        "channel.history_meta_ttl"
    );
}

#[test]
fn proxies_and_personal_channel() {
    assert_eq!(
        key_of(|c| c.proxies = vec![typed(json!({"name": "default", "endpoint": "http://x"}))]),
        "proxies[0].name"
    );
    assert_eq!(
        key_of(|c| c.proxies = vec![typed(json!({"name": "p1"}))]),
        "proxies[0].endpoint"
    );
    assert_eq!(
        key_of(|c| c.proxies = vec![typed(
            json!({"name": "p1", "endpoint": "http://x", "timeout": "0s"})
        )]),
        "proxies[0].timeout"
    );
    assert_eq!(
        key_of(|c| c.proxies = vec![
            typed(json!({"name": "p1", "endpoint": "a"})),
            typed(json!({"name": "p1", "endpoint": "b"}))
        ]),
        "proxies[1].name"
    );
    assert_eq!(
        key_of(|c| c.client.proxy.connect.enabled = true),
        "client.proxy.connect.endpoint"
    );
    assert_eq!(
        key_of(|c| {
            c.client.subscribe_to_user_personal_channel.enabled = true;
            c.client
                .subscribe_to_user_personal_channel
                .personal_channel_namespace = "personal".into();
        }),
        "client.subscribe_to_user_personal_channel.personal_channel_namespace"
    );
}

/// A JSON value typed as the loader would.
fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("typed value")
}

#[test]
fn insecure_options_warn() {
    let mut c = Config::default();
    c.client.insecure = true;
    c.http_api.insecure = true;
    c.admin.insecure = true;
    c.client.insecure_skip_token_signature_verify = true;
    c.client.allowed_origins = vec!["*".into()];
    let w = warnings(&c);
    assert_eq!(w.len(), 5, "{w:?}");
    for key in [
        "client.insecure",
        "http_api.insecure",
        "admin.insecure",
        "insecure_skip_token_signature_verify",
        "allowed_origins",
    ] {
        assert!(w.iter().any(|m| m.contains(key)), "{key}");
    }
}

#[test]
fn enabled_endpoints_need_distinct_paths() {
    let (key, msg) = error_of(|c| {
        c.sse.enabled = true;
        c.sse.handler_prefix = "/connection/websocket".into();
    });
    assert_eq!(key, "sse.handler_prefix");
    assert!(msg.contains("websocket.handler_prefix"), "{msg}");
    // A disabled endpoint's path may be anything.
    let mut c = Config::default();
    c.uni_sse.handler_prefix = "/connection/websocket".into();
    assert!(validate(&c).is_ok());
}
