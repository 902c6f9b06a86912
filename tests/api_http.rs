//! HTTP API adapter: routes generated from api.proto, API key rules, 405,
//! 400, error modes, batch order, the legacy endpoint and the body limit
//! (`spec/server-api.md` §2). Uses only routing, auth, JSON decoding and
//! error shapes, so it passes with any executor.

mod support;

use rotor::api::gateway::METHODS;
use serde_json::{Value, json};
use support::TestServer;
use support::api::{API_KEY, api_config, post, rate_limited_config, request};

/// Methods whose reply is the same with any executor: an empty request
/// body `{}` is rejected or answered without touching engine state.
fn error_of(v: &Value) -> Option<u64> {
    v.pointer("/error/code").and_then(Value::as_u64)
}

#[tokio::test]
async fn every_rpc_has_a_post_route_that_answers_json() {
    let srv = TestServer::start(api_config()).await;
    for m in METHODS {
        let r = post(&srv, &format!("/api/{}", m.name), "{}").await;
        assert_eq!(r.status, 200, "{}: {}", m.name, r.body);
        assert_eq!(r.content_type, "application/json", "{}", m.name);
        let v = r.json();
        let obj = v.as_object().expect("object");
        if m.name == "batch" {
            assert_eq!(v, json!({}), "empty batch has no replies");
        } else {
            assert!(
                obj.contains_key("result") ^ obj.contains_key("error"),
                "{}: {v}",
                m.name
            );
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn unknown_subpaths_and_pro_methods_are_404() {
    let srv = TestServer::start(api_config()).await;
    for path in ["/api/connections", "/api/nope", "/api/publish/x"] {
        let r = post(&srv, path, "{}").await;
        assert_eq!(r.status, 404, "{path}");
    }
    srv.stop().await;
}

/// Centrifugo registers each API method on Go's `ServeMux` with the API
/// key check inside that method's handler chain (`internal/app/mux.go`), so
/// a path naming no method is the mux's own 404 — whatever the key, any
/// HTTP method — with `http.NotFound`'s body.
#[tokio::test]
async fn unknown_method_is_404_whatever_the_key() {
    let srv = TestServer::start(api_config()).await;
    let keys: [&[(&str, &str)]; 3] = [&[], &[("X-API-Key", "wrong")], &[("X-API-Key", API_KEY)]];
    for headers in keys {
        for method in ["POST", "GET"] {
            let r = request(&srv, method, "/api/nope", "{}", headers).await;
            assert_eq!(
                (r.status, r.body.as_str(), r.content_type.as_str()),
                (404, "404 page not found\n", "text/plain; charset=utf-8"),
                "{method} {headers:?}"
            );
        }
    }
    // A known method with a wrong key is refused by the key check.
    let r = request(&srv, "POST", "/api/info", "{}", &[("X-API-Key", "wrong")]).await;
    assert_eq!(r.status, 401);
    srv.stop().await;
}

#[tokio::test]
async fn api_key_rules() {
    let srv = TestServer::start(api_config()).await;
    let path = "/api/info";
    let status = async |headers: &[(&str, &str)]| request(&srv, "POST", path, "{}", headers).await;
    assert_eq!(status(&[]).await.status, 401);
    let r = status(&[("X-API-Key", "wrong")]).await;
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    assert_eq!(status(&[("X-API-Key", API_KEY)]).await.status, 200);
    for scheme in ["apikey", "ApiKey"] {
        let auth = format!("{scheme} {API_KEY}");
        assert_eq!(status(&[("Authorization", &auth)]).await.status, 200);
    }
    let bearer = format!("Bearer {API_KEY}");
    let r = request(&srv, "POST", path, "{}", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 401);
    let q = format!("{path}?api_key={API_KEY}");
    assert_eq!(request(&srv, "POST", &q, "{}", &[]).await.status, 200);
    let r = request(&srv, "POST", "/api/info?api_key=bad", "{}", &[]).await;
    assert_eq!(r.status, 401);
    srv.stop().await;
}

#[tokio::test]
async fn empty_key_refuses_everything_and_insecure_skips_auth() {
    let mut cfg = api_config();
    cfg.http_api.key = String::new();
    let srv = TestServer::start(cfg).await;
    let r = request(&srv, "POST", "/api/info", "{}", &[("X-API-Key", "")]).await;
    assert_eq!(r.status, 401);
    srv.stop().await;

    let mut cfg = api_config();
    cfg.http_api.key = String::new();
    cfg.http_api.insecure = true;
    let srv = TestServer::start(cfg).await;
    assert_eq!(
        request(&srv, "POST", "/api/info", "{}", &[]).await.status,
        200
    );
    srv.stop().await;
}

#[tokio::test]
async fn non_post_is_405_with_empty_body_before_auth() {
    let srv = TestServer::start(api_config()).await;
    for method in ["GET", "PUT", "DELETE"] {
        for path in ["/api/publish", "/api/batch", "/api"] {
            let r = request(&srv, method, path, "", &[]).await;
            assert_eq!((r.status, r.body.as_str()), (405, ""), "{method} {path}");
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn undecodable_bodies_are_400_text() {
    let srv = TestServer::start(api_config()).await;
    for body in ["", "not json", "{\"channel\":1}", "[1]", "{"] {
        let r = post(&srv, "/api/publish", body).await;
        assert_eq!(r.status, 400, "{body:?}");
        assert_eq!(r.body, "Bad Request");
        assert!(
            r.content_type.starts_with("text/plain"),
            "{}",
            r.content_type
        );
    }
    let r = post(&srv, "/api/batch", "{\"commands\":1}").await;
    assert_eq!(r.status, 400);
    // `null` decodes as the empty request, as in Go.
    let r = post(&srv, "/api/rpc", " null ").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().get("error").is_some());
    srv.stop().await;
}

#[tokio::test]
async fn error_modes() {
    // `rpc` with an empty method is 107 for any executor.
    let srv = TestServer::start(api_config()).await;
    let body = r#"{"method":""}"#;
    let r = post(&srv, "/api/rpc", body).await;
    assert_eq!(r.status, 200);
    let code = error_of(&r.json()).expect("error in body");
    let headers = [
        ("X-API-Key", API_KEY),
        ("X-Centrifugo-Error-Mode", "transport"),
    ];
    let t = request(&srv, "POST", "/api/rpc", body, &headers).await;
    assert_ne!(t.status, 200);
    assert_eq!(t.json().get("code").and_then(Value::as_u64), Some(code));
    assert!(t.json().get("error").is_none(), "bare error: {}", t.body);
    // Batch never converts.
    let b = request(
        &srv,
        "POST",
        "/api/batch",
        r#"{"commands":[{"rpc":{}}]}"#,
        &headers,
    )
    .await;
    assert_eq!(b.status, 200);
    assert_eq!(b.json()["replies"][0]["error"]["code"], json!(code));
    srv.stop().await;

    let mut cfg = api_config();
    cfg.http_api.error_mode = rotor::config::ErrorMode::Transport;
    let srv = TestServer::start(cfg).await;
    let r = post(&srv, "/api/rpc", body).await;
    assert_ne!(r.status, 200);
    assert_eq!(r.json()["code"], json!(code));
    srv.stop().await;
}

#[tokio::test]
async fn batch_keeps_order_empty_command_is_104_and_null_is_107() {
    let srv = TestServer::start(api_config()).await;
    for parallel in [false, true] {
        let body = json!({
            "commands": [{"rpc": {"method": ""}}, {}, {"info": {}}, {"rpc": {"method": ""}}, null],
            "parallel": parallel,
        });
        let v = post(&srv, "/api/batch", &body.to_string()).await.json();
        let replies = v["replies"].as_array().expect("replies");
        assert_eq!(replies.len(), 5);
        assert_eq!(
            replies[1],
            json!({"error": {"code": 104, "message": "not found"}})
        );
        assert_eq!(
            replies[4],
            json!({"error": {"code": 107, "message": "bad request"}})
        );
        assert!(replies[0].get("error").is_some() && replies[3].get("error").is_some());
        let info = &replies[2];
        assert!(
            info.get("info").is_some() || info.get("error").is_some(),
            "{info}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn legacy_endpoint() {
    let srv = TestServer::start(api_config()).await;
    let body = "{\"id\":1,\"method\":\"rpc\",\"params\":{\"method\":\"\"}}\n\
                {\"id\":2,\"method\":\"no_such\",\"params\":{}}\n\
                {\"method\":\"RPC\",\"params\":{\"method\":1}}\n\
                {\"id\":4,\"method\":10,\"params\":{\"method\":\"\"}}";
    let r = post(&srv, "/api", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lines: Vec<Value> = r
        .body
        .split('\n')
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], json!(1));
    assert!(lines[0]["error"]["code"].is_u64());
    assert_eq!(
        lines[1],
        json!({"id": 2, "error": {"code": 104, "message": "not found"}})
    );
    assert_eq!(
        lines[2],
        json!({"error": {"code": 107, "message": "bad request"}})
    );
    assert_eq!(lines[3]["id"], json!(4));
    assert_eq!(lines[3]["error"], lines[0]["error"]);
    // Empty and malformed bodies are 400 text; auth applies.
    for bad in ["", "  \n", "{\"method\":", "[1]"] {
        let r = post(&srv, "/api", bad).await;
        assert_eq!((r.status, r.body.as_str()), (400, "Bad Request"), "{bad:?}");
    }
    assert_eq!(request(&srv, "POST", "/api", body, &[]).await.status, 401);
    srv.stop().await;
}

#[tokio::test]
async fn body_limit_is_64_mib() {
    let srv = TestServer::start(api_config()).await;
    let big = format!("{{\"method\":\"{}\"}}", "x".repeat(64 << 20));
    let r = post(&srv, "/api/rpc", &big).await;
    assert_eq!(r.status, 413);
    srv.stop().await;
}

#[tokio::test]
async fn prefix_disabled_and_swagger() {
    let mut cfg = api_config();
    cfg.http_api.handler_prefix = "/custom/".into();
    cfg.swagger.enabled = true;
    let srv = TestServer::start(cfg).await;
    assert_eq!(post(&srv, "/custom/info", "{}").await.status, 200);
    assert_eq!(post(&srv, "/api/info", "{}").await.status, 404);
    let doc = request(&srv, "GET", "/swagger/doc.json", "", &[]).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], json!("3.0.3"));
    for m in METHODS {
        let path = format!("/custom/{}", m.name);
        assert!(doc["paths"].get(&path).is_some(), "{path} in OpenAPI");
    }
    assert!(doc["components"]["schemas"]["PublishRequest"]["properties"]["data"].is_object());
    let ui = request(&srv, "GET", "/swagger/", "", &[]).await;
    assert!(ui.status == 200 && ui.body.contains("doc.json"));
    srv.stop().await;

    let mut cfg = api_config();
    cfg.http_api.disabled = true;
    let srv = TestServer::start(cfg).await;
    assert_eq!(post(&srv, "/api/info", "{}").await.status, 404);
    srv.stop().await;
}

/// The tower stack sits in front of the HTTP API of the real server: with a
/// per-key budget of 2 requests, the third gets 429 with Retry-After.
#[tokio::test]
async fn rate_limit_per_api_key_is_in_front_of_the_http_api() {
    let srv = TestServer::start(rate_limited_config(2)).await;
    for _ in 0..2 {
        assert_eq!(post(&srv, "/api/info", "{}").await.status, 200);
    }
    assert_eq!(post(&srv, "/api/info", "{}").await.status, 429);
    srv.stop().await;
}
