//! Fossil delta compression of publication data (`delta: "fossil"`).
//!
//! A subscription that negotiated delta receives each publication either in
//! full or as a fossil delta against the data of the publication before it.
//! Over JSON the `data` of such a subscription is a JSON *string* holding
//! the JSON text (full) or the delta, since a delta is not JSON itself; over
//! Protobuf it is the raw bytes. The SDK keeps the last full value and
//! applies each delta to it.
//!
//! Deltas are made with the `fossil-delta` crate, whose output the official
//! SDK's decoder applies byte for byte (see `spec/dependencies.md`).

use bytes::Bytes;

use crate::proto::client::Publication;

/// A fossil delta turning `prev` into `next`, or `None` when it would not
/// be smaller than `next` (the full data is sent then).
pub(crate) fn fossil(prev: &[u8], next: &[u8]) -> Option<Bytes> {
    // The crate's argument order is (target, source).
    let patch = fossil_delta::delta(next, prev);
    (patch.len() < next.len()).then(|| Bytes::from(patch))
}

/// `data` as a JSON string literal (quoted and escaped), the form delta
/// subscriptions carry over JSON. `None` when `data` is not UTF-8 text.
pub(crate) fn json_string(data: &[u8]) -> Option<Bytes> {
    let text = std::str::from_utf8(data).ok()?;
    serde_json::to_vec(text).ok().map(Bytes::from)
}

/// Rewrites publications recovered for a delta subscription into the chain
/// the SDK decodes: the first in full, each next one as a delta against the
/// one before it (in full where a delta does not pay). Over JSON every
/// `data` becomes a JSON string; a publication whose data or delta is not
/// text is sent in full, and one whose data is not text at all is left as
/// is (the JSON encoder then refuses it, as it would without delta).
pub(crate) fn chain(publications: &mut [Publication], json: bool) {
    let mut prev: Option<Bytes> = None;
    for p in publications.iter_mut() {
        let full = p.data.clone();
        let patch = prev.as_deref().and_then(|b| fossil(b, &full));
        let (data, delta) = match patch {
            Some(patch) if !json => (Some(patch), true),
            Some(patch) => match json_string(&patch) {
                Some(s) => (Some(s), true),
                None => (json_string(&full), false),
            },
            None if json => (json_string(&full), false),
            None => (Some(full.clone()), false),
        };
        if let Some(data) = data {
            p.data = data;
            p.delta = delta;
        }
        prev = Some(full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(prev: &[u8], patch: &[u8]) -> Vec<u8> {
        fossil_delta::apply(prev, patch).expect("valid delta")
    }

    #[test]
    fn delta_applies_and_is_skipped_when_it_does_not_pay() {
        let prev = br#"{"name":"rotor","items":[1,2,3,4,5,6,7,8,9,10],"n":1}"#;
        let next = br#"{"name":"rotor","items":[1,2,3,4,5,6,7,8,9,10],"n":2}"#;
        let patch = fossil(prev, next).expect("smaller");
        assert!(patch.len() < next.len());
        assert_eq!(apply(prev, &patch), next);
        assert_eq!(fossil(b"abc", b"xyz"), None, "no gain on tiny data");
    }

    #[test]
    fn json_string_quotes_text_only() {
        assert_eq!(
            json_string(br#"{"a":"b"}"#).as_deref(),
            Some(&br#""{\"a\":\"b\"}""#[..])
        );
        assert_eq!(json_string(&[0xff, 0xfe]), None);
    }

    #[test]
    fn chain_starts_full_then_diffs_each_against_the_one_before() {
        let datas: Vec<Vec<u8>> = (0..4)
            .map(|i| format!(r#"{{"doc":"{}","v":{i}}}"#, "x".repeat(200)).into_bytes())
            .collect();
        let pubs = || -> Vec<Publication> {
            datas
                .iter()
                .map(|d| Publication {
                    data: Bytes::from(d.clone()),
                    ..Default::default()
                })
                .collect()
        };
        let mut binary = pubs();
        chain(&mut binary, false);
        assert!(!binary[0].delta);
        assert_eq!(binary[0].data, datas[0]);
        let mut value = binary[0].data.to_vec();
        for (p, want) in binary.iter().zip(&datas).skip(1) {
            assert!(p.delta);
            value = apply(&value, &p.data);
            assert_eq!(&value, want);
        }

        let mut json = pubs();
        chain(&mut json, true);
        let text = |p: &Publication| -> String {
            serde_json::from_slice::<String>(&p.data).expect("a JSON string")
        };
        assert_eq!(text(&json[0]).as_bytes(), &datas[0][..]);
        let mut value = text(&json[0]).into_bytes();
        for (p, want) in json.iter().zip(&datas).skip(1) {
            assert!(p.delta);
            value = apply(&value, text(p).as_bytes());
            assert_eq!(&value, want);
        }
    }
}
