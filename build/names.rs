//! Name conversions shared by the generators, matching prost's: a proto
//! name such as `RPCRequest` becomes the Rust type `RpcRequest`, the rpc
//! `PresenceStats` becomes the method `presence_stats`.

/// Splits an identifier into words at case boundaries (`RPCRequest` →
/// `RPC`, `Request`; `PresenceStats` → `Presence`, `Stats`).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && !cur.is_empty()
            && (prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || next.is_some_and(|n| n.is_lowercase()));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `PresenceStats` → `presence_stats`, `RPC` → `rpc`.
pub fn snake(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// `RPCRequest` → `RpcRequest`.
pub fn upper_camel(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| {
            let lower = w.to_lowercase();
            let mut cs = lower.chars();
            match cs.next() {
                Some(first) => first.to_uppercase().chain(cs).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// The last segment of a fully qualified type name (`.a.b.Msg` → `Msg`).
pub fn short_type(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}
