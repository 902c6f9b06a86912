//! HTTP API stack refusals (429, 413, 504, 503) and the client stack on
//! the WebSocket upgrade.

use std::sync::Arc;

use axum::routing::get;
use rotor::config::Config;
use tokio::sync::{Notify, mpsc};

use super::support::{PATIENCE, TestServer, base_config};
use super::{HOUR, get_, ok_router, request, rule, serve_api};

#[tokio::test(start_paused = true)]
async fn per_ip_limit_refuses_after_burst_and_recovers_after_the_interval() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_ip = rule(2, HOUR, 2);
    let addr = serve_api(ok_router(), &cfg).await;
    for _ in 0..2 {
        assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
    }
    let refused = get_(addr, "/api/info", &[]).await;
    assert_eq!(refused.status, 429);
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(
        retry > 0 && retry <= HOUR.as_secs() / 2,
        "retry-after {retry}"
    );
    tokio::time::advance(HOUR).await;
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn per_key_limits_are_isolated() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_api_key = rule(1, HOUR, 1);
    let addr = serve_api(ok_router(), &cfg).await;
    let a = [("x-api-key", "key-a")];
    let b = [("authorization", "apikey key-b")];
    assert_eq!(get_(addr, "/api/info", &a).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &a).await.status, 429);
    // The same key in the query string is the same bucket.
    assert_eq!(get_(addr, "/api/info?api_key=key-a", &[]).await.status, 429);
    assert_eq!(get_(addr, "/api/info", &b).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &b).await.status, 429);
    // No key: not limited per key.
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn per_ip_uses_forwarded_for_only_from_trusted_proxies() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_ip = rule(1, HOUR, 1);
    cfg.middleware.client_ip.trusted_proxies = vec!["127.0.0.0/8".into()];
    let addr = serve_api(ok_router(), &cfg).await;
    let one = [("x-forwarded-for", "203.0.113.1")];
    let two = [("x-forwarded-for", "203.0.113.2")];
    assert_eq!(get_(addr, "/api/info", &one).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &one).await.status, 429);
    assert_eq!(get_(addr, "/api/info", &two).await.status, 200);
    assert_eq!(
        get_(addr, "/api/info", &[("x-real-ip", "203.0.113.3")])
            .await
            .status,
        200
    );

    // Without trust the header is ignored: everyone is 127.0.0.1.
    cfg.middleware.client_ip.trusted_proxies.clear();
    let addr = serve_api(ok_router(), &cfg).await;
    assert_eq!(get_(addr, "/api/info", &one).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &two).await.status, 429);
}

#[tokio::test]
async fn big_body_is_413() {
    let mut cfg = Config::default();
    cfg.middleware.body_limit.max_bytes = 1024;
    let addr = serve_api(ok_router(), &cfg).await;
    let r = tokio::time::timeout(
        PATIENCE,
        request(addr, "POST", "/api/publish", &[], &[b'x'; 4096]),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 413);
    let r = tokio::time::timeout(
        PATIENCE,
        request(addr, "POST", "/api/publish", &[], &[b'x'; 1024]),
    )
    .await
    .expect("answer");
    assert_eq!((r.status, r.body.as_str()), (200, "1024"));
}

#[tokio::test(start_paused = true)]
async fn slow_handler_is_504() {
    let mut cfg = Config::default();
    cfg.middleware.timeout.request = rotor::config::Duration::from_secs(2);
    let app = ok_router().route(
        "/api/slow",
        get(|| async {
            tokio::time::sleep(HOUR).await;
            "late"
        }),
    );
    let addr = serve_api(app, &cfg).await;
    let started = tokio::time::Instant::now();
    assert_eq!(get_(addr, "/api/slow", &[]).await.status, 504);
    assert!(started.elapsed() < HOUR);
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
}

#[tokio::test]
async fn excess_concurrency_is_shed_with_503() {
    let mut cfg = Config::default();
    cfg.middleware.load_shed.max_in_flight = 1;
    let gate = Arc::new(Notify::new());
    let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
    let g = gate.clone();
    let app = ok_router().route(
        "/api/hold",
        get(move || {
            let (g, tx) = (g.clone(), entered_tx.clone());
            async move {
                let _ = tx.send(());
                g.notified().await;
                "released"
            }
        }),
    );
    let addr = serve_api(app, &cfg).await;
    let held = tokio::spawn(async move { get_(addr, "/api/hold", &[]).await });
    tokio::time::timeout(PATIENCE, entered.recv())
        .await
        .expect("held request reached the handler");
    let shed = tokio::time::timeout(PATIENCE, get_(addr, "/api/info", &[]))
        .await
        .expect("answer");
    assert_eq!(shed.status, 503);
    gate.notify_one();
    let held = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("held done")
        .expect("join");
    assert_eq!((held.status, held.body.as_str()), (200, "released"));
    let after = tokio::time::timeout(PATIENCE, get_(addr, "/api/info", &[]))
        .await
        .expect("answer");
    assert_eq!(after.status, 200);
}

#[tokio::test]
async fn client_stack_guards_the_websocket_upgrade() {
    let mut cfg = base_config();
    cfg.client.connection_limit = 1;
    cfg.middleware.rate_limit.per_ip = rule(1, HOUR, 1);
    let srv = TestServer::start(cfg).await;
    // API rate limits never apply to connection routes.
    let a = srv.connected(false, "a").await;
    let r = tokio::time::timeout(
        PATIENCE,
        get_(srv.addr, "/connection/websocket", &upgrade_headers()),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 503);
    drop(a);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = get_(srv.addr, "/connection/websocket", &upgrade_headers()).await;
        if r.status == 101 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::task::yield_now().await;
    }
    // Health sits outside the client stack: never refused.
    assert_eq!(get_(srv.addr, "/health", &[]).await.status, 200);
    srv.stop().await;
}

fn upgrade_headers() -> [(&'static str, &'static str); 4] {
    [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
}
