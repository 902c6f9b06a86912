//! The serde pass: one `#[serde(...)]` attribute per field, chosen by
//! walking the descriptor set, so the generated structs speak Centrifugo's
//! JSON dialect (Go `encoding/json` over protoc-gen-go structs) rather than
//! canonical proto3 JSON.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

/// Fields serialized even when they hold their zero value, as Centrifugo's
/// JSON does. Fully qualified as `.package.Message.field`.
pub const ALWAYS_EMIT: &[&str] = &[
    // client protocol
    ".centrifugal.centrifuge.protocol.ClientInfo.user",
    ".centrifugal.centrifuge.protocol.ClientInfo.client",
    ".centrifugal.centrifuge.protocol.PresenceResult.presence",
    ".centrifugal.centrifuge.protocol.PresenceStatsResult.num_clients",
    ".centrifugal.centrifuge.protocol.PresenceStatsResult.num_users",
    ".centrifugal.centrifuge.protocol.HistoryResult.publications",
    ".centrifugal.centrifuge.protocol.HistoryResult.epoch",
    ".centrifugal.centrifuge.protocol.HistoryResult.offset",
    // server API (spec/server-api.md §2.4)
    ".centrifugal.centrifugo.api.ClientInfo.user",
    ".centrifugal.centrifugo.api.ClientInfo.client",
    ".centrifugal.centrifugo.api.PresenceResult.presence",
    ".centrifugal.centrifugo.api.PresenceStatsResult.num_clients",
    ".centrifugal.centrifugo.api.PresenceStatsResult.num_users",
    ".centrifugal.centrifugo.api.HistoryResult.publications",
    ".centrifugal.centrifugo.api.HistoryResult.epoch",
    ".centrifugal.centrifugo.api.HistoryResult.offset",
    ".centrifugal.centrifugo.api.NodeResult.uid",
    ".centrifugal.centrifugo.api.NodeResult.name",
    ".centrifugal.centrifugo.api.NodeResult.version",
    ".centrifugal.centrifugo.api.NodeResult.num_clients",
    ".centrifugal.centrifugo.api.NodeResult.num_users",
    ".centrifugal.centrifugo.api.NodeResult.num_channels",
    ".centrifugal.centrifugo.api.NodeResult.num_subs",
    ".centrifugal.centrifugo.api.ChannelsResult.channels",
    // proxy requests (spec/server-api.md §3.4: `user` is always present)
    ".centrifugal.centrifugo.proxy.RefreshRequest.user",
    ".centrifugal.centrifugo.proxy.SubscribeRequest.user",
    ".centrifugal.centrifugo.proxy.PublishRequest.user",
    ".centrifugal.centrifugo.proxy.RPCRequest.user",
    ".centrifugal.centrifugo.proxy.SubRefreshRequest.user",
];

/// True when the fully qualified field is on the always-emit whitelist.
pub fn always_emitted(path: &str) -> bool {
    ALWAYS_EMIT.contains(&path)
}

/// Walks the descriptor set and returns the serde attribute for each field.
pub fn field_attributes(fds: &FileDescriptorSet) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in &fds.file {
        let prefix = format!(".{}", file.package());
        for msg in &file.message_type {
            message_attributes(&prefix, msg, &mut out);
        }
    }
    out
}

fn message_attributes(prefix: &str, msg: &DescriptorProto, out: &mut Vec<(String, String)>) {
    let name = format!("{prefix}.{}", msg.name());
    if msg.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    for nested in &msg.nested_type {
        message_attributes(&name, nested, out);
    }
    for field in &msg.field {
        let path = format!("{name}.{}", field.name());
        let repeated = field.label() == Label::Repeated;
        let mut parts = Vec::new();
        if field.r#type() == Type::Bytes && !repeated {
            parts.push("with = \"crate::proto::rawjson\"".to_string());
        } else {
            parts.push("deserialize_with = \"crate::proto::nullable\"".to_string());
        }
        if !always_emitted(&path) {
            parts.push("skip_serializing_if = \"crate::proto::is_default\"".to_string());
        }
        out.push((path, format!("#[serde({})]", parts.join(", "))));
    }
}
