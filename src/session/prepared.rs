//! A publication encoded once for all the subscribers of this node: one
//! encoding per wire encoding, and for subscriptions that negotiated delta
//! one per [`DeltaForm`], the fossil delta itself made at most once.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::engine::Publication;
use crate::proto::client::Push;
use crate::protocol::Encoding;
use crate::protocol::codec::{EncodeError, encode_push};
use crate::protocol::delta;

/// A push encoded once per encoding, shared by all subscribers; for a
/// publication also its delta forms ([`DeltaForm`]), each made at most once
/// however many delta subscribers there are.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    json: OnceLock<Result<Bytes, EncodeError>>,
    protobuf: OnceLock<Bytes>,
    /// Data of the previous publication of the stream (delta publish).
    prev: Option<Bytes>,
    /// Fossil delta from `prev`, when there is one and it pays.
    patch: OnceLock<Option<Bytes>>,
    json_full: OnceLock<Result<Bytes, EncodeError>>,
    /// `None` when the delta is not text (sent in full then).
    json_patch: OnceLock<Option<Result<Bytes, EncodeError>>>,
    protobuf_patch: OnceLock<Bytes>,
}

/// How a publication goes to a subscription that negotiated delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeltaForm {
    /// The whole data (over JSON as a JSON string): the first publication
    /// after subscribing, or when the client's base is not the previous
    /// stream entry.
    Full,
    /// A delta against the previous publication when the broker handed it
    /// and the delta pays; otherwise [`DeltaForm::Full`].
    Patch,
}

impl Prepared {
    /// For a publication whose previous stream entry had data `prev`.
    pub(crate) fn with_prev(prev: Option<Bytes>) -> Self {
        Self {
            prev,
            ..Self::default()
        }
    }

    /// The encoded publication push for a delta subscription.
    pub(crate) fn get_delta(
        &self,
        encoding: Encoding,
        form: DeltaForm,
        channel: &str,
        publication: &Publication,
    ) -> Result<Bytes, EncodeError> {
        let patch = match form {
            DeltaForm::Full => None,
            DeltaForm::Patch => self
                .patch
                .get_or_init(|| {
                    let prev = self.prev.as_deref()?;
                    delta::fossil(prev, &publication.data)
                })
                .as_ref(),
        };
        let push = |data: Bytes, delta: bool| {
            let mut p = publication.clone();
            p.data = data;
            p.delta = delta;
            publication_push(channel, p)
        };
        match (encoding, patch) {
            (Encoding::Protobuf, None) => {
                self.get(encoding, || publication_push(channel, publication.clone()))
            }
            (Encoding::Protobuf, Some(patch)) => Ok(self
                .protobuf_patch
                .get_or_init(|| {
                    encode_push(Encoding::Protobuf, push(patch.clone(), true)).unwrap_or_default()
                })
                .clone()),
            (Encoding::Json, patch) => {
                let as_patch = patch.and_then(|patch| {
                    self.json_patch
                        .get_or_init(|| {
                            let text = delta::json_string(patch)?;
                            Some(encode_push(Encoding::Json, push(text, true)))
                        })
                        .clone()
                });
                as_patch.unwrap_or_else(|| {
                    self.json_full
                        .get_or_init(|| {
                            let text = delta::json_string(&publication.data)
                                .ok_or(EncodeError::NotJson)?;
                            encode_push(Encoding::Json, push(text, false))
                        })
                        .clone()
                })
            }
        }
    }

    /// The encoded push for `encoding`, built on first use.
    pub(crate) fn get(
        &self,
        encoding: Encoding,
        build: impl Fn() -> Push,
    ) -> Result<Bytes, EncodeError> {
        match encoding {
            Encoding::Json => self
                .json
                .get_or_init(|| encode_push(Encoding::Json, build()))
                .clone(),
            Encoding::Protobuf => Ok(self
                .protobuf
                .get_or_init(|| encode_push(Encoding::Protobuf, build()).unwrap_or_default())
                .clone()),
        }
    }
}

pub(crate) fn publication_push(channel: &str, publication: Publication) -> Push {
    Push {
        channel: channel.to_string(),
        r#pub: Some(publication),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every delta subscriber gets the very same encoded bytes: the delta
    /// and its encodings are made once per publication.
    #[test]
    fn delta_forms_are_made_once_per_publication() {
        let doc = |n: u32| Bytes::from(format!(r#"{{"doc":"{}","n":{n}}}"#, "x".repeat(300)));
        let prepared = Prepared::with_prev(Some(doc(1)));
        let publication = Publication {
            data: doc(2),
            offset: 2,
            ..Default::default()
        };
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let get = |form| {
                prepared
                    .get_delta(encoding, form, "ch", &publication)
                    .expect("encodes")
            };
            let (a, b) = (get(DeltaForm::Patch), get(DeltaForm::Patch));
            assert_eq!(a.as_ptr(), b.as_ptr(), "{encoding:?}: one delta encoding");
            assert!(
                a.len() < 200,
                "{encoding:?}: the delta is small ({} bytes)",
                a.len()
            );
            let (c, d) = (get(DeltaForm::Full), get(DeltaForm::Full));
            assert_eq!(c.as_ptr(), d.as_ptr(), "{encoding:?}: one full encoding");
            assert!(c.len() > 300);
        }
        // Without a previous entry a delta subscriber gets the full form.
        let first = Prepared::with_prev(None);
        let full = first
            .get_delta(Encoding::Json, DeltaForm::Patch, "ch", &publication)
            .expect("encodes");
        let text = String::from_utf8(full.to_vec()).expect("utf-8");
        assert!(text.contains(r#""data":"{\"doc\""#), "{text}");
        assert!(!text.contains(r#""delta":true"#), "{text}");
    }
}
