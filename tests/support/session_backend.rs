//! A scripted HTTP proxy backend (axum on 127.0.0.1:0) for the session
//! proxy tests: every POST is recorded (path, JSON body, headers) and
//! answered by the test's script.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

/// How the backend answers one call.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// This status with an empty body.
    Status(u16),
    /// 200 with this body as is (e.g. not JSON).
    Raw(&'static str),
    /// Wait, then answer.
    Slow(Duration, Value),
    /// Answer once the test releases the gate.
    Held(Arc<tokio::sync::Notify>, Value),
}

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub body: Value,
    pub headers: HeaderMap,
}

type Script = Arc<dyn Fn(&str, &Value) -> Answer + Send + Sync>;

/// A running backend.
pub struct Backend {
    pub addr: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Starts a backend answering each call with `script(path, body)`.
    pub async fn start(script: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static) -> Self {
        let script: Script = Arc::new(script);
        let (tx, calls) = mpsc::unbounded_channel();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let script = script.clone();
                let tx = tx.clone();
                async move {
                    let path = uri.path().to_string();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let answer = script(&path, &body);
                    let _ = tx.send(Call {
                        path,
                        body,
                        headers,
                    });
                    respond(answer).await
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, calls, task }
    }

    /// `http://addr/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// The next recorded call (fails the test after the deadline).
    pub async fn call(&mut self) -> Call {
        tokio::time::timeout(Duration::from_secs(5), self.calls.recv())
            .await
            .expect("backend called within deadline")
            .expect("backend running")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Json(v) => axum::Json(v).into_response(),
        Answer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Answer::Raw(text) => text.into_response(),
        Answer::Slow(wait, v) => {
            tokio::time::sleep(wait).await;
            axum::Json(v).into_response()
        }
        Answer::Held(gate, v) => {
            gate.notified().await;
            axum::Json(v).into_response()
        }
    }
}

/// A proxy object pointing at `endpoint` (300 ms timeout).
pub fn proxy(endpoint: &str) -> Value {
    serde_json::json!({ "endpoint": endpoint, "timeout": "300ms" })
}

/// The error code of a reply; `None` for a reply without error or a close.
pub fn error_code(e: &crate::support::Event) -> Option<u32> {
    match e {
        crate::support::Event::Reply(r) => r.error.as_ref().map(|e| e.code),
        crate::support::Event::Closed(..) => None,
    }
}

/// An `http://` endpoint nothing listens on.
pub async fn dead_endpoint() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/down")
}
