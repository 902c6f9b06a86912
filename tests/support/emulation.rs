//! A raw emulation client for `tests/emulation.rs`: a streaming response
//! (HTTP-streaming JSON or Protobuf, or SSE) read reply by reply, and
//! commands posted to `/emulation`.

use std::collections::VecDeque;

use bytes::Bytes;
use prost::Message as _;
use rotor::proto::client::{
    Command, ConnectRequest, EmulationRequest, Push, Reply, SubscribeRequest,
};
use serde_json::json;

use crate::support::api::call;
use crate::support::{PATIENCE, TestServer, token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    StreamJson,
    StreamProtobuf,
    Sse,
}

impl Kind {
    pub fn protobuf(self) -> bool {
        self == Kind::StreamProtobuf
    }
}

/// A raw emulation client: a streaming response and `/emulation` posts.
pub struct EmuClient {
    resp: reqwest::Response,
    kind: Kind,
    buf: Vec<u8>,
    pending: VecDeque<Reply>,
    ended: bool,
    base: String,
    http: reqwest::Client,
    pub session: String,
    pub node: String,
    next_id: u32,
}

/// Commands as one frame in the client's encoding.
pub fn encode_frame(protobuf: bool, cmds: &[Command]) -> Vec<u8> {
    if protobuf {
        let mut buf = Vec::new();
        for c in cmds {
            c.encode_length_delimited(&mut buf).expect("encode");
        }
        buf
    } else {
        let lines: Vec<String> = cmds
            .iter()
            .map(|c| serde_json::to_string(c).expect("json"))
            .collect();
        lines.join("\n").into_bytes()
    }
}

pub fn connect_cmd(user: &str) -> Command {
    Command {
        id: 1,
        connect: Some(ConnectRequest {
            token: token(user, 3600),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Opens the stream request of `kind` with `first` as its connect frame.
pub async fn open_raw(srv: &TestServer, kind: Kind, first: Vec<u8>) -> reqwest::Response {
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.addr);
    let req = match kind {
        Kind::StreamJson => http
            .post(format!("{base}/connection/http_stream"))
            .header("content-type", "application/json")
            .body(first),
        Kind::StreamProtobuf => http
            .post(format!("{base}/connection/http_stream"))
            .header("content-type", "application/octet-stream")
            .body(first),
        Kind::Sse => {
            let mut url = reqwest::Url::parse(&format!("{base}/connection/sse")).expect("url");
            let text = String::from_utf8(first).expect("utf-8");
            url.query_pairs_mut().append_pair("cf_connect", &text);
            http.get(url)
        }
    };
    tokio::time::timeout(PATIENCE, req.send())
        .await
        .expect("response in time")
        .expect("request sent")
}

impl EmuClient {
    /// Connects as `user`; returns the client and its connect reply.
    pub async fn open(srv: &TestServer, kind: Kind, user: &str) -> (Self, Reply) {
        let frame = encode_frame(kind.protobuf(), &[connect_cmd(user)]);
        let resp = open_raw(srv, kind, frame).await;
        assert_eq!(resp.status(), 200);
        let mut c = Self {
            resp,
            kind,
            buf: Vec::new(),
            pending: VecDeque::new(),
            ended: false,
            base: format!("http://{}", srv.addr),
            http: reqwest::Client::new(),
            session: String::new(),
            node: String::new(),
            next_id: 1,
        };
        let reply = c.reply_to(1).await;
        let res = reply.connect.clone().expect("connect result");
        c.session = res.session.clone();
        c.node = res.node.clone();
        (c, reply)
    }

    /// The next reply, push or ping; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Reply> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(r);
            }
            if self.ended {
                return None;
            }
            self.parse();
            if !self.pending.is_empty() {
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.resp.chunk())
                .await
                .expect("stream data in time");
            match chunk {
                Ok(Some(b)) => self.buf.extend_from_slice(&b),
                Ok(None) | Err(_) => {
                    self.parse();
                    self.ended = true;
                }
            }
        }
    }

    /// Moves every complete message in the buffer to `pending`.
    fn parse(&mut self) {
        match self.kind {
            Kind::StreamJson => {
                while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=i).collect();
                    let line = &line[..line.len() - 1];
                    if !line.is_empty() {
                        self.pending
                            .push_back(serde_json::from_slice(line).expect("reply json"));
                    }
                }
            }
            Kind::StreamProtobuf => loop {
                let mut rest: &[u8] = &self.buf;
                let Ok(len) = prost::encoding::decode_varint(&mut rest) else {
                    return;
                };
                let head = self.buf.len() - rest.len();
                let len = len as usize;
                if rest.len() < len {
                    return;
                }
                let reply = Reply::decode(&rest[..len]).expect("reply proto");
                self.buf.drain(..head + len);
                self.pending.push_back(reply);
            },
            Kind::Sse => {
                while let Some(i) = self.buf.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = self.buf.drain(..i + 2).collect();
                    let text = String::from_utf8(event).expect("utf-8 event");
                    for line in text.lines() {
                        if let Some(data) = line.strip_prefix("data: ") {
                            self.pending
                                .push_back(serde_json::from_str(data).expect("reply json"));
                        }
                    }
                }
            }
        }
    }

    /// Waits for the reply `id`, keeping what came before it.
    pub async fn reply_to(&mut self, id: u32) -> Reply {
        let mut skipped = Vec::new();
        let out = loop {
            match self.next().await {
                Some(r) if r.id == id => break r,
                Some(r) => skipped.push(r),
                None => panic!("stream ended while waiting for reply {id}"),
            }
        };
        for r in skipped.into_iter().rev() {
            self.pending.push_front(r);
        }
        out
    }

    /// The next push, skipping pings.
    pub async fn push(&mut self) -> Push {
        loop {
            match self.next().await {
                Some(Reply { push: Some(p), .. }) => return p,
                Some(_) => {}
                None => panic!("stream ended while waiting for a push"),
            }
        }
    }

    /// Posts commands to `/emulation`; returns the status.
    pub async fn post(&self, cmds: &[Command]) -> u16 {
        let data = encode_frame(self.kind.protobuf(), cmds);
        emulate(
            &self.http,
            &self.base,
            self.kind.protobuf(),
            &self.node,
            &self.session,
            data,
        )
        .await
    }

    /// Sends one command through `/emulation` and waits for its reply.
    pub async fn call(&mut self, mut cmd: Command) -> Reply {
        self.next_id += 1;
        cmd.id = self.next_id;
        assert_eq!(self.post(std::slice::from_ref(&cmd)).await, 204);
        self.reply_to(cmd.id).await
    }

    pub async fn subscribe(&mut self, channel: &str) -> Reply {
        self.call(Command {
            subscribe: Some(SubscribeRequest {
                channel: channel.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
    }

    /// Waits for the stream to end; returns the disconnect push before it.
    pub async fn disconnected(&mut self) -> rotor::proto::client::Disconnect {
        let mut last = None;
        while let Some(r) = self.next().await {
            if let Some(d) = r.push.and_then(|p| p.disconnect) {
                last = Some(d);
            }
        }
        last.expect("a disconnect push before the end")
    }
}

/// Posts an EmulationRequest; returns the status.
pub async fn emulate(
    http: &reqwest::Client,
    base: &str,
    protobuf: bool,
    node: &str,
    session: &str,
    data: Vec<u8>,
) -> u16 {
    let req = http.post(format!("{base}/emulation"));
    let req = if protobuf {
        let body = EmulationRequest {
            node: node.into(),
            session: session.into(),
            data: Bytes::from(data),
        }
        .encode_to_vec();
        req.header("content-type", "application/octet-stream")
            .body(body)
    } else {
        let text = String::from_utf8(data).expect("json commands");
        let body = json!({"session": session, "node": node, "data": text});
        req.header("content-type", "application/json")
            .body(body.to_string())
    };
    let resp = tokio::time::timeout(PATIENCE, req.send())
        .await
        .expect("emulation answer in time")
        .expect("emulation request sent");
    resp.status().as_u16()
}

/// Publishes through the HTTP API.
pub async fn api_publish(srv: &TestServer, channel: &str, data: serde_json::Value) {
    call(srv, "publish", json!({"channel": channel, "data": data})).await;
}
