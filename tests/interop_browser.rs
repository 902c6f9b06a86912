//! Interop in a real browser: headless Chromium (driven by npm
//! `playwright-core`) loads a page with the centrifuge-js browser bundle from
//! a static server on its own loopback origin, connects to the real `rotor`
//! binary over one transport, subscribes, receives a publication made through
//! the HTTP API, publishes from the page, and checks presence and history.
//! A page from a second origin, not in `client.allowed_origins`, must not
//! connect. One test per transport (`websocket`, `http_stream`, `sse`); the
//! WebSocket and HTTP-streaming tests run the JSON and the Protobuf bundle.
//!
//! Runner: `tests/interop/browser/run.mjs` through `tests/support/interop.rs`
//! (the server's config is `tests/interop/config.json` with the page's origin
//! as the only allowed origin). Chromium is `/usr/bin/chromium` (Debian
//! package `chromium`, installed by `bash tests/run.sh` when it can) or
//! `ROTOR_CHROMIUM`; when it is missing the tests SKIP, or fail with
//! `ROTOR_REQUIRE_INTEROP=1`.
//!
//! Run one: `cargo test --test interop_browser websocket -- --nocapture`.

#[path = "support/interop.rs"]
mod runner;

use std::path::PathBuf;

use runner::{CaseOpts, Sdk, free_port, interop_dir, run_case_with};

/// The Chromium binary the runner launches.
fn chromium() -> PathBuf {
    std::env::var_os("ROTOR_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Runs `browser/run.mjs` for one transport against a fresh server that
/// allows exactly the page's origin.
fn run(transport: &str) {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let chromium = chromium();
    let opts = CaseOpts {
        script: Some("browser/run.mjs".into()),
        config_patch: Some(serde_json::json!({"client": {"allowed_origins": [origin]}})),
        env: vec![
            ("ROTOR_BROWSER_PORT".into(), port.to_string()),
            ("ROTOR_BROWSER_TRANSPORTS".into(), transport.into()),
            ("ROTOR_CHROMIUM".into(), chromium.display().to_string()),
        ],
        needs: vec![(
            chromium,
            "Chromium: `apt-get install -y chromium` (bash tests/run.sh does it when root), \
             or point ROTOR_CHROMIUM at a Chromium binary"
                .into(),
        )],
        label: Some(format!("browser/{transport}")),
        ..CaseOpts::default()
    };
    run_case_with(
        Sdk::Js,
        "browser",
        "json",
        &["centrifuge", "ws", "eventsource", "playwright-core"],
        false,
        &opts,
    );
}

#[test]
fn websocket() {
    run("websocket");
}

#[test]
fn http_stream() {
    run("http_stream");
}

#[test]
fn sse() {
    run("sse");
}

/// The page and the runner are there (no browser, no server).
#[test]
fn files_exist() {
    for p in ["browser/index.html", "browser/run.mjs"] {
        assert!(
            interop_dir().join(p).exists(),
            "tests/interop/{p} is missing"
        );
    }
}
