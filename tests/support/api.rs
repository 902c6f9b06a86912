//! Server API test helpers: a config with API keys and the gRPC API on,
//! HTTP POST helpers and a gRPC client built from our generated code.

use rotor::config::Config;
use rotor::proto::api::centrifugo_api_client::CentrifugoApiClient;
use serde_json::Value;
use tonic::transport::Channel;

use super::{TestServer, base_config};

/// API key of [`api_config`] (HTTP and gRPC).
pub const API_KEY: &str = "api-test-key";

/// [`base_config`] with the HTTP API keyed, and the gRPC API enabled with
/// the same key and reflection on.
pub fn api_config() -> Config {
    let mut cfg = base_config();
    cfg.http_api.key = API_KEY.into();
    cfg.grpc_api.enabled = true;
    cfg.grpc_api.key = API_KEY.into();
    cfg.grpc_api.reflection = true;
    cfg
}

/// An HTTP response: status, content type and body text.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl HttpReply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// Sends `method` `path` with `body` and extra headers to the server.
pub async fn request(
    srv: &TestServer,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> HttpReply {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", srv.addr);
    let mut req = client.request(method.parse().expect("method"), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(super::PATIENCE, req.body(body.to_string()).send())
        .await
        .expect("response in time")
        .expect("request sent");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.text().await.expect("body");
    HttpReply {
        status,
        content_type,
        body,
    }
}

/// POST `path` with the API key in `X-API-Key`.
pub async fn post(srv: &TestServer, path: &str, body: &str) -> HttpReply {
    request(srv, "POST", path, body, &[("X-API-Key", API_KEY)]).await
}

/// Calls `/api/<method>` with a JSON body; asserts 200 and returns the JSON.
pub async fn call(srv: &TestServer, method: &str, body: Value) -> Value {
    let r = post(srv, &format!("/api/{method}"), &body.to_string()).await;
    assert_eq!(r.status, 200, "{method}: {}", r.body);
    r.json()
}

/// A gRPC channel to the server's gRPC listener.
pub async fn grpc_channel(srv: &TestServer) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", srv.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connects")
}

/// A gRPC client of the server's API (no key attached).
pub async fn grpc_client(srv: &TestServer) -> CentrifugoApiClient<Channel> {
    CentrifugoApiClient::new(grpc_channel(srv).await)
}

/// [`api_config`] with a per-API-key budget of `burst` requests a minute.
pub fn rate_limited_config(burst: u64) -> Config {
    let mut cfg = api_config();
    let rule = &mut cfg.middleware.rate_limit.per_api_key;
    rule.rate = 1;
    rule.interval = rotor::config::Duration::from_secs(60);
    rule.burst = burst;
    cfg
}

/// `request` with the `authorization: apikey <KEY>` metadata.
pub fn with_key<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("apikey {API_KEY}").parse().expect("metadata"),
    );
    req
}
