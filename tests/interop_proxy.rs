//! Interop suite for the proxy: a Python `grpcio` backend generated at start
//! from our `proto/proxy.proto` (`tests/interop/python/proxy_backend.py`)
//! serves the connect and rpc proxies, and the official client SDKs connect
//! without a token and call `rpc()` (`proxy_rpc` scenario), one test per SDK ×
//! encoding.
//!
//! Runner: `tests/support/interop.rs` ([`runner::run_proxy_case`] starts the
//! backend, then `rotor` with the proxy config pointing at it).
//! Run one: `cargo test --test interop_proxy js_json -- --nocapture`.

#[path = "support/interop.rs"]
mod runner;

use runner::{Sdk, interop_dir, run_proxy_case};

/// Runs the `proxy_rpc` scenario with what each SDK imports.
fn run(sdk: Sdk, encoding: &str) {
    let packages: &[&str] = match sdk {
        Sdk::Js => &["centrifuge", "ws"],
        Sdk::Python => &["centrifuge"],
    };
    run_proxy_case(sdk, "proxy_rpc", encoding, packages);
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

/// The scenario's scripts and the backend are there (no network, no server).
#[test]
fn scripts_exist() {
    for p in [
        "js/proxy_rpc.mjs",
        "python/proxy_rpc.py",
        "python/proxy_backend.py",
    ] {
        assert!(
            interop_dir().join(p).exists(),
            "tests/interop/{p} is missing"
        );
    }
}
