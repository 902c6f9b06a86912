//! Origins.

use crate::support::{TestServer, WsClient, assert_healthy, base_config, token, upgrade_status};

// ---------------------------------------------------------------------------
// Origins.

fn origin_config(allowed: &[&str]) -> rotor::config::Config {
    let mut cfg = base_config();
    cfg.client.allowed_origins = allowed.iter().map(|s| s.to_string()).collect();
    cfg
}

#[tokio::test]
async fn any_origin_with_empty_allowed_origins_is_403() {
    let srv = TestServer::start(origin_config(&[])).await;
    for origin in [
        &b"Origin: https://example.com"[..],
        b"Origin: null",
        b"Origin: http://127.0.0.1",
    ] {
        assert_eq!(
            upgrade_status(srv.addr, &[origin]).await,
            403,
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    assert!(
        WsClient::open(&srv.ws_url(), false, Some("https://example.com"))
            .await
            .is_err()
    );
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn origin_not_in_allowed_origins_is_403() {
    let srv = TestServer::start(origin_config(&[
        "https://example.com",
        "https://*.example.org",
    ]))
    .await;
    for origin in [
        &b"Origin: https://evil.com"[..],
        b"Origin: https://example.com.evil.com",
        b"Origin: http://example.com",
        b"Origin: https://example.org.evil.com",
        b"Origin: null",
    ] {
        assert_eq!(
            upgrade_status(srv.addr, &[origin]).await,
            403,
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn no_origin_is_accepted() {
    let srv = TestServer::start(origin_config(&["https://example.com"])).await;
    assert_eq!(upgrade_status(srv.addr, &[]).await, 101);
    // And the connection is usable.
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn cyrillic_look_alike_origin_is_403() {
    let srv = TestServer::start(origin_config(&["https://example.com"])).await;
    // U+0435 CYRILLIC SMALL LETTER IE in place of the Latin "e", raw UTF-8.
    let header = "Origin: https://\u{0435}xample.com".as_bytes().to_vec();
    assert_eq!(upgrade_status(srv.addr, &[&header]).await, 403);
    // The same with a glob pattern.
    drop(srv);
    let srv = TestServer::start(origin_config(&["https://*.example.com"])).await;
    let header = "Origin: https://app.\u{0435}xample.com".as_bytes().to_vec();
    assert_eq!(upgrade_status(srv.addr, &[&header]).await, 403);
    drop(srv);
    // With an empty list any Origin is refused, ASCII or not.
    let srv = TestServer::start(origin_config(&[])).await;
    assert_eq!(upgrade_status(srv.addr, &[&header]).await, 403);
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn matching_origin_glob_is_accepted() {
    let srv = TestServer::start(origin_config(&[
        "https://*.example.com",
        "http://localhost:*",
    ]))
    .await;
    for origin in [
        &b"Origin: https://app.example.com"[..],
        b"Origin: HTTPS://APP.EXAMPLE.COM",
        b"Origin: http://localhost:3000",
    ] {
        assert_eq!(
            upgrade_status(srv.addr, &[origin]).await,
            101,
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    let mut c = WsClient::open(&srv.ws_url(), false, Some("https://app.example.com"))
        .await
        .expect("allowed origin connects");
    c.connect(&token("u", 60)).await.connect.expect("connected");
    assert_healthy(&srv).await;
    srv.stop().await;
}
