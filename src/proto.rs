//! Generated protocol types and the serde helpers their JSON form relies on.
//!
//! `build.rs` generates the structs from `proto/*.proto` and attaches the
//! attributes that point here: [`rawjson`] for `bytes` fields, [`is_default`]
//! for omitted zero values and [`nullable`] for Go-like `null` handling.

/// The client protocol (`centrifugal.centrifuge.protocol`).
pub mod client {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(
        env!("OUT_DIR"),
        "/centrifugal.centrifuge.protocol.rs"
    ));
}

/// The server API (`centrifugal.centrifugo.api`): messages, the tonic
/// server and client of `CentrifugoApi`.
pub mod api {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifugo.api.rs"));
}

/// The proxy protocol (`centrifugal.centrifugo.proxy`): messages sent to
/// application backends, the tonic client of `CentrifugoProxy` (and its
/// server, used by tests and backends written in Rust).
pub mod proxy {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifugo.proxy.rs"));
}

/// Encoded `FileDescriptorSet` of the protos Rotor serves (for gRPC
/// reflection; the proxy protocol is left out).
pub(crate) const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// True when `v` holds its type's zero value; used to omit empty fields.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Decodes a field, treating JSON `null` as the zero value.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `bytes` fields as embedded raw JSON.
///
/// On input the JSON value is captured verbatim (a string keeps its quotes).
/// On output the bytes are spliced in as they are, minus any `\n` (only ever
/// insignificant whitespace in valid JSON), so that a serialized message
/// never contains a newline and can be `\n`-batched. Bytes that are not a
/// JSON value fail serialization: a JSON connection cannot carry them.
pub(crate) mod rawjson {
    use bytes::Bytes;
    use serde::de::Deserialize;
    use serde::ser::Error as _;
    use serde_json::value::RawValue;

    /// Serializes raw JSON bytes verbatim.
    pub(crate) fn serialize<S: serde::Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        if v.is_empty() {
            return s.serialize_none();
        }
        if v.contains(&b'\n') {
            let stripped: Vec<u8> = v.iter().copied().filter(|&b| b != b'\n').collect();
            let raw: &RawValue = serde_json::from_slice(&stripped).map_err(S::Error::custom)?;
            return serde::Serialize::serialize(raw, s);
        }
        let raw: &RawValue = serde_json::from_slice(v).map_err(S::Error::custom)?;
        serde::Serialize::serialize(raw, s)
    }

    /// Captures any JSON value as its raw text.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text: Box<str> = raw.into();
        Ok(Bytes::from(String::from(text)))
    }

    /// True when `data` is one complete JSON value.
    pub(crate) fn is_valid(data: &[u8]) -> bool {
        serde_json::from_slice::<&RawValue>(data).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::client::*;
    use bytes::Bytes;

    #[test]
    fn reply_json_omits_zero_values_and_embeds_raw_data() {
        let reply = Reply {
            push: Some(Push {
                channel: "chat".into(),
                r#pub: Some(Publication {
                    data: Bytes::from_static(b"{\"text\":\n\"hi\"}"),
                    info: Some(ClientInfo::default()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_string(&reply).expect("serializes");
        assert_eq!(
            json,
            r#"{"push":{"channel":"chat","pub":{"data":{"text":"hi"},"info":{"user":"","client":""}}}}"#
        );
    }

    #[test]
    fn empty_results_are_objects_and_always_emitted_fields_stay() {
        let reply = Reply {
            id: 3,
            publish: Some(PublishResult {}),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&reply).expect("ok"),
            r#"{"id":3,"publish":{}}"#
        );
        let h = HistoryResult::default();
        assert_eq!(
            serde_json::to_string(&h).expect("ok"),
            r#"{"publications":[],"epoch":"","offset":0}"#
        );
    }

    #[test]
    fn command_json_captures_raw_data_and_tolerates_null() {
        let cmd: Command = serde_json::from_str(
            r#"{"id":2,"publish":{"channel":"c","data":"str"},"subscribe":null,"unknown":1}"#,
        )
        .expect("parses");
        let p = cmd.publish.expect("publish set");
        assert_eq!(&p.data[..], b"\"str\"");
        assert!(cmd.subscribe.is_none());
    }

    #[test]
    fn binary_data_fails_json_serialization() {
        let p = Publication {
            data: Bytes::from_static(&[0xff, 0x00]),
            ..Default::default()
        };
        assert!(serde_json::to_vec(&p).is_err());
    }
}
