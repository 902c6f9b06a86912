//! Interop suite: the official Centrifugo client SDKs (centrifuge-js 5.8 and
//! centrifuge-python 0.7) against the real `rotor` binary.
//!
//! Every test is one scenario × one SDK × one encoding. It starts its own
//! `rotor --config tests/interop/config.json --http_server.port <free port>`,
//! waits for `/health`, runs the scenario script (`tests/interop/js/*.mjs`
//! with Node, or `tests/interop/python/*.py` with the venv's Python) with
//! `ROTOR_WS_URL` / `ROTOR_HMAC_SECRET` / `ROTOR_ENCODING` set, and kills the
//! server at the end (a Drop guard does it on failure too).
//!
//! The JS scenarios also run over the bidirectional emulation
//! (`ROTOR_TRANSPORT=http_stream` with JSON and Protobuf, `ROTOR_TRANSPORT=sse`
//! with JSON): `http_stream::<scenario>::js_json`, `sse::<scenario>::js_json`…
//! The SDK then gets a transports list with `ROTOR_HTTP_URL/connection/<transport>`
//! and the absolute `ROTOR_HTTP_URL/emulation` endpoint (`tests/interop/js/lib.mjs`).
//!
//! The runner (server start, SDK checks, script output) is
//! `tests/support/interop.rs`, shared with `tests/interop_api.rs`.
//!
//! Run one: `cargo test --test interop recovery::js_protobuf -- --nocapture`
//! (or `http_stream::recovery::js_protobuf`).
//! Useful env: `ROTOR_INTEROP_DEBUG=1` (SDK debug logs), `ROTOR_SCENARIO_TIMEOUT_MS`.

#[path = "support/interop.rs"]
mod runner;

use runner::{CaseOpts, Sdk, interop_dir};

/// What the client-SDK scenarios import.
fn run_case(sdk: Sdk, scenario: &str, encoding: &str) {
    let packages: &[&str] = match sdk {
        Sdk::Js => &["centrifuge", "ws"],
        Sdk::Python => &["centrifuge"],
    };
    runner::run_case(sdk, scenario, encoding, packages);
}

/// A JS scenario over an emulation transport (`http_stream` or `sse`);
/// `proxy`: with the gRPC proxy backend (as `tests/interop_proxy.rs`).
fn run_emulated(transport: &str, scenario: &str, encoding: &str, proxy: bool) {
    let opts = CaseOpts {
        transport: Some(transport.to_string()),
        ..CaseOpts::default()
    };
    runner::run_case_with(
        Sdk::Js,
        scenario,
        encoding,
        &["centrifuge", "ws", "eventsource"],
        proxy,
        &opts,
    );
}

/// One module per scenario, one test per SDK × encoding:
/// `connect::js_json`, `connect::js_protobuf`, `connect::python_json`, ...
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::{run_case, Sdk};
                #[test]
                fn js_json() { run_case(Sdk::Js, stringify!($name), "json") }
                #[test]
                fn js_protobuf() { run_case(Sdk::Js, stringify!($name), "protobuf") }
                #[test]
                fn python_json() { run_case(Sdk::Python, stringify!($name), "json") }
                #[test]
                fn python_protobuf() { run_case(Sdk::Python, stringify!($name), "protobuf") }
            }
        )*

        /// Every scenario has its script in both SDKs (no network, no server).
        #[test]
        fn every_scenario_has_both_scripts() {
            for s in [$(stringify!($name)),*] {
                for p in [format!("js/{s}.mjs"), format!("python/{s}.py")] {
                    assert!(interop_dir().join(&p).exists(), "tests/interop/{p} is missing");
                }
            }
        }
    };
}

scenarios!(
    connect,
    pubsub,
    history,
    recovery,
    presence,
    join_leave,
    token_refresh,
    sub_token,
    user_limited,
    permissions,
    server_subs,
    delta,
    tags_filter,
);

/// The JS scenarios over the emulation transports: `http_stream::<scenario>`
/// (JSON and Protobuf) and `sse::<scenario>` (JSON only: SSE carries text).
/// `[proxy]` scenarios run with the gRPC proxy backend.
macro_rules! emulated {
    (@proxy proxy) => { true };
    (@proxy) => { false };
    ($($name:ident $([$proxy:ident])?),* $(,)?) => {
        /// centrifuge-js over HTTP-streaming + `/emulation`.
        mod http_stream {
            $(
                mod $name {
                    use super::super::run_emulated;
                    const PROXY: bool = emulated!(@proxy $($proxy)?);
                    #[test]
                    fn js_json() { run_emulated("http_stream", stringify!($name), "json", PROXY) }
                    #[test]
                    fn js_protobuf() { run_emulated("http_stream", stringify!($name), "protobuf", PROXY) }
                }
            )*
        }

        /// centrifuge-js over SSE (EventSource) + `/emulation`.
        mod sse {
            $(
                mod $name {
                    use super::super::run_emulated;
                    const PROXY: bool = emulated!(@proxy $($proxy)?);
                    #[test]
                    fn js_json() { run_emulated("sse", stringify!($name), "json", PROXY) }
                }
            )*
        }

        /// Every emulated scenario has its JS script (no network, no server).
        #[test]
        fn every_emulated_scenario_has_a_js_script() {
            for s in [$(stringify!($name)),*] {
                let p = format!("js/{s}.mjs");
                assert!(interop_dir().join(&p).exists(), "tests/interop/{p} is missing");
            }
        }
    };
}

emulated!(
    connect,
    pubsub,
    history,
    recovery,
    presence,
    join_leave,
    token_refresh,
    sub_token,
    user_limited,
    permissions,
    server_subs,
    delta,
    tags_filter,
    proxy_rpc[proxy],
);
