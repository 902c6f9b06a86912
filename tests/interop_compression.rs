//! Interop: WebSocket permessage-deflate with the clients' own WebSocket
//! libraries (npm `ws` under centrifuge-js, Python `websockets` under
//! centrifuge-python), both of which offer the extension by default.
//!
//! The server runs `tests/interop/config.json` with `websocket.compression`
//! on and `compression_min_size` 0, so every server frame is compressed.
//! The runner is `tests/support/interop.rs`.

#[path = "support/interop.rs"]
mod runner;

use runner::Sdk;

fn run(sdk: Sdk, encoding: &str) {
    let packages: &[&str] = match sdk {
        Sdk::Js => &["centrifuge", "ws"],
        Sdk::Python => &["centrifuge", "websockets"],
    };
    let opts = runner::CaseOpts {
        config_patch: Some(serde_json::json!({
            "websocket": { "compression": true, "compression_min_size": 0 }
        })),
        ..Default::default()
    };
    runner::run_case_with(sdk, "compression", encoding, packages, false, &opts);
}

#[test]
fn js_json() {
    run(Sdk::Js, "json");
}

#[test]
fn js_protobuf() {
    run(Sdk::Js, "protobuf");
}

#[test]
fn python_json() {
    run(Sdk::Python, "json");
}

#[test]
fn python_protobuf() {
    run(Sdk::Python, "protobuf");
}
