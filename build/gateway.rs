//! The server API adapters, generated from `api.proto`'s service and its
//! `Command`/`Reply` messages, so that adding an rpc gives the HTTP route,
//! the gRPC method, the batch entry and the legacy entry with no glue
//! written by hand. Emits Rust text included by `src/api/gateway.rs`.

use std::fmt::Write as _;

use prost_types::{DescriptorProto, FileDescriptorProto};

use crate::names::{short_type, snake, upper_camel};

/// Order in which a batch `Command`'s fields are checked (Centrifugo's);
/// fields not listed follow in field-number order.
const BATCH_ORDER: &[&str] = &[
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "history",
    "history_remove",
    "presence",
    "presence_stats",
    "info",
    "rpc",
    "refresh",
    "channels",
];

/// Enum values of the legacy single-endpoint protocol (`POST /api`).
const LEGACY: &[(&str, u32)] = &[
    ("publish", 0),
    ("broadcast", 1),
    ("unsubscribe", 2),
    ("disconnect", 3),
    ("presence", 4),
    ("presence_stats", 5),
    ("history", 6),
    ("history_remove", 7),
    ("channels", 8),
    ("info", 9),
    ("rpc", 10),
    ("subscribe", 11),
    ("refresh", 12),
];

/// The rpc answered by the adapters themselves rather than the executor.
const BATCH_RPC: &str = "Batch";

/// One unary rpc answered by the executor.
struct Method {
    rpc: String,
    name: String,
    req: String,
    resp: String,
}

fn message<'a>(file: &'a FileDescriptorProto, name: &str) -> Option<&'a DescriptorProto> {
    file.message_type.iter().find(|m| m.name() == name)
}

fn methods(file: &FileDescriptorProto) -> Result<Vec<Method>, String> {
    let service = file
        .service
        .first()
        .ok_or("api.proto declares no service")?;
    let mut out = Vec::new();
    for m in &service.method {
        if m.name() == BATCH_RPC {
            continue;
        }
        let resp_name = short_type(m.output_type());
        let resp = message(file, resp_name).ok_or(format!("no message {resp_name}"))?;
        for field in ["error", "result"] {
            if !resp.field.iter().any(|f| f.name() == field) {
                return Err(format!("{resp_name} has no {field} field"));
            }
        }
        out.push(Method {
            rpc: m.name().to_string(),
            name: snake(m.name()),
            req: upper_camel(short_type(m.input_type())),
            resp: upper_camel(resp_name),
        });
    }
    Ok(out)
}

/// Command field names in dispatch order, each with its method.
fn batch_fields<'a>(
    file: &FileDescriptorProto,
    methods: &'a [Method],
) -> Result<Vec<&'a Method>, String> {
    let command = message(file, "Command").ok_or("no Command message")?;
    let mut fields: Vec<&str> = BATCH_ORDER.to_vec();
    for f in &command.field {
        if !fields.contains(&f.name()) {
            fields.push(f.name());
        }
    }
    let mut out = Vec::new();
    for name in fields {
        if !command.field.iter().any(|f| f.name() == name) {
            continue;
        }
        let m = methods
            .iter()
            .find(|m| m.name == name)
            .ok_or(format!("Command.{name} has no rpc"))?;
        out.push(m);
    }
    Ok(out)
}

/// Generates the adapters' Rust source.
pub fn generate(file: &FileDescriptorProto) -> Result<String, String> {
    let methods = methods(file)?;
    let batch = batch_fields(file, &methods)?;
    let mut s = String::new();
    let w = &mut s;
    // Method table.
    let _ = writeln!(w, "/// Every rpc of `CentrifugoApi`, in declaration order.");
    let _ = writeln!(w, "pub const METHODS: &[MethodInfo] = &[");
    let _ = writeln!(
        w,
        "    MethodInfo {{ rpc: {BATCH_RPC:?}, name: {:?}, legacy: None }},",
        snake(BATCH_RPC)
    );
    for m in &methods {
        let legacy = LEGACY
            .iter()
            .find(|(n, _)| *n == m.name)
            .map_or("None".to_string(), |(_, v)| format!("Some({v})"));
        let _ = writeln!(
            w,
            "    MethodInfo {{ rpc: {:?}, name: {:?}, legacy: {legacy} }},",
            m.rpc, m.name
        );
    }
    let _ = writeln!(w, "];\n");

    // HTTP routes.
    let _ = writeln!(
        w,
        "/// `<prefix>/<method>` routes of the HTTP API, one per rpc."
    );
    let _ = writeln!(
        w,
        "pub fn method_routes(prefix: &str) -> axum::Router<crate::api::http::HttpApi> {{"
    );
    let _ = writeln!(w, "    axum::Router::new()");
    let _ = writeln!(
        w,
        "        .route(&format!(\"{{prefix}}/{}\"), axum::routing::post(crate::api::http_batch::batch))",
        snake(BATCH_RPC)
    );
    for m in &methods {
        let _ = writeln!(
            w,
            "        .route(&format!(\"{{prefix}}/{name}\"), axum::routing::post(|api: axum::extract::State<crate::api::http::HttpApi>, headers: axum::http::HeaderMap, body: bytes::Bytes| crate::api::http::unary(api, headers, body, |ex: std::sync::Arc<Executor>, req: {req}| async move {{ ex.{name}(req).await }})))",
            name = m.name,
            req = m.req
        );
    }
    let _ = writeln!(w, "}}\n");

    // gRPC service.
    let _ = writeln!(w, "#[tonic::async_trait]");
    let _ = writeln!(
        w,
        "impl centrifugo_api_server::CentrifugoApi for crate::api::grpc::GrpcApi {{"
    );
    let _ = writeln!(
        w,
        "    async fn {}(&self, request: tonic::Request<BatchRequest>) -> Result<tonic::Response<BatchResponse>, tonic::Status> {{\n        self.run_batch(request).await\n    }}",
        snake(BATCH_RPC)
    );
    for m in &methods {
        let _ = writeln!(
            w,
            "    async fn {name}(&self, request: tonic::Request<{req}>) -> Result<tonic::Response<{resp}>, tonic::Status> {{\n        let transport = self.transport_mode(request.metadata());\n        let out = self.executor.{name}(request.into_inner()).await;\n        crate::api::grpc::respond(out, transport, |error, result| {resp} {{ error, result }})\n    }}",
            name = m.name,
            req = m.req,
            resp = m.resp
        );
    }
    let _ = writeln!(w, "}}\n");

    // Batch dispatch.
    let _ = writeln!(
        w,
        "/// Runs one batch command: the first request field set, in Centrifugo's order."
    );
    let _ = writeln!(
        w,
        "pub async fn dispatch(ex: &Executor, cmd: Command) -> Reply {{"
    );
    for m in &batch {
        let _ = writeln!(
            w,
            "    if let Some(req) = cmd.{name} {{\n        return match ex.{name}(req).await {{\n            Ok(r) => Reply {{ {name}: Some(r), ..Default::default() }},\n            Err(e) => error_reply(e),\n        }};\n    }}",
            name = m.name
        );
    }
    let _ = writeln!(w, "    error_reply(ApiError::not_found())\n}}\n");

    // Legacy dispatch.
    let _ = writeln!(
        w,
        "/// Runs one legacy command by method name; returns the result's JSON."
    );
    let _ = writeln!(
        w,
        "pub async fn legacy_call(ex: &Executor, method: &str, params: &[u8]) -> Result<Vec<u8>, ApiError> {{"
    );
    let _ = writeln!(w, "    match method {{");
    for m in &methods {
        if LEGACY.iter().any(|(n, _)| *n == m.name) {
            let _ = writeln!(
                w,
                "        {name:?} => encode_result(&ex.{name}(decode_params::<{req}>(params)?).await?),",
                name = m.name,
                req = m.req
            );
        }
    }
    let _ = writeln!(w, "        _ => Err(ApiError::not_found()),\n    }}\n}}");
    Ok(s)
}
