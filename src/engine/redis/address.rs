//! Redis address strings as the configuration gives them, turned into what
//! the engine connects to.
//!
//! * `redis://…`, `rediss://…`, `tcp://host:port` and bare `host:port` — one
//!   standalone Redis (the URL goes to the client library as is, so its own
//!   parameters such as a `/db` path keep working);
//! * `redis+cluster://[user:pass@]host:port?addr=host2:port2&addr=…`
//!   (`rediss+cluster://` for TLS) — the seed nodes of one Redis Cluster;
//! * `redis+sentinel://[user:pass@]host:26379?addr=host2:26379&sentinel_master_name=mymaster`
//!   (`rediss+sentinel://` for TLS to the master) — the Sentinels of one
//!   master; `sentinel_user`, `sentinel_password` may be given as parameters
//!   too, and the userinfo is the master's credentials.
//!
//! Parameter values are taken literally (no percent-decoding).

/// One parsed address entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Parsed {
    /// A standalone Redis URL.
    Plain(String),
    /// Seed node URLs of a cluster (credentials inside the URLs).
    Cluster(Vec<String>),
    /// A Sentinel-managed master.
    Sentinel(SentinelAddress),
}

/// What a `redis+sentinel://` address says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct SentinelAddress {
    /// `redis://host:port` of each Sentinel.
    pub(crate) sentinels: Vec<String>,
    pub(crate) master_name: String,
    pub(crate) sentinel_user: String,
    pub(crate) sentinel_password: String,
    /// The master's credentials from the userinfo.
    pub(crate) user: String,
    pub(crate) password: String,
    /// The master's database from the path.
    pub(crate) db: Option<i64>,
    /// TLS to the master.
    pub(crate) tls: bool,
}

/// The pieces of `scheme://[userinfo@]host[/path][?query]`.
struct Url<'a> {
    scheme: String,
    userinfo: Option<&'a str>,
    host: &'a str,
    path: &'a str,
    query: Vec<(&'a str, &'a str)>,
}

fn split(address: &str) -> Result<Url<'_>, String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("empty address".to_owned());
    }
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("redis".to_owned(), address),
    };
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match main.find('/') {
        Some(i) => (&main[..i], &main[i + 1..]),
        None => (main, ""),
    };
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err("address without host".to_owned());
    }
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    Ok(Url {
        scheme,
        userinfo,
        host,
        path,
        query,
    })
}

fn with_userinfo(scheme: &str, userinfo: Option<&str>, host: &str) -> String {
    match userinfo {
        Some(u) => format!("{scheme}://{u}@{host}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Parses one address; `tls` (the object's `tls.enabled`) upgrades plain
/// and cluster addresses to TLS.
pub(super) fn parse(address: &str, tls: bool) -> Result<Parsed, String> {
    let url = split(address)?;
    match url.scheme.as_str() {
        "redis" | "tcp" | "rediss" => {
            let scheme = if tls || url.scheme == "rediss" {
                "rediss"
            } else {
                "redis"
            };
            let rest = address
                .trim()
                .split_once("://")
                .map_or(address.trim(), |(_, r)| r);
            Ok(Parsed::Plain(format!("{scheme}://{rest}")))
        }
        "redis+cluster" | "rediss+cluster" => {
            let scheme = if tls || url.scheme.starts_with("rediss") {
                "rediss"
            } else {
                "redis"
            };
            let mut seeds = vec![with_userinfo(scheme, url.userinfo, url.host)];
            for (key, value) in &url.query {
                match *key {
                    "addr" if !value.is_empty() => {
                        seeds.push(with_userinfo(scheme, url.userinfo, value));
                    }
                    other => return Err(format!("unknown cluster address parameter {other:?}")),
                }
            }
            Ok(Parsed::Cluster(seeds))
        }
        "redis+sentinel" | "rediss+sentinel" => {
            let mut s = SentinelAddress {
                sentinels: vec![format!("redis://{}", url.host)],
                tls: tls || url.scheme.starts_with("rediss"),
                ..SentinelAddress::default()
            };
            if let Some(userinfo) = url.userinfo {
                let (user, password) = userinfo.split_once(':').unwrap_or(("", userinfo));
                s.user = user.to_owned();
                s.password = password.to_owned();
            }
            if !url.path.is_empty() {
                s.db = Some(
                    url.path
                        .parse()
                        .map_err(|_| format!("bad database number {:?}", url.path))?,
                );
            }
            for (key, value) in &url.query {
                match *key {
                    "addr" if !value.is_empty() => s.sentinels.push(format!("redis://{value}")),
                    "sentinel_master_name" => s.master_name = (*value).to_owned(),
                    "sentinel_user" => s.sentinel_user = (*value).to_owned(),
                    "sentinel_password" => s.sentinel_password = (*value).to_owned(),
                    other => return Err(format!("unknown sentinel address parameter {other:?}")),
                }
            }
            Ok(Parsed::Sentinel(s))
        }
        other => Err(format!("unsupported address scheme {other:?}")),
    }
}

/// A plain address (for `cluster_address` / `sentinel_address` entries):
/// `host:port` or a `redis://` / `rediss://` URL.
pub(super) fn plain(address: &str, tls: bool) -> Result<String, String> {
    match parse(address, tls)? {
        Parsed::Plain(url) => Ok(url),
        _ => Err("expected host:port or a redis:// URL".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse("localhost:6380", false),
            Ok(Parsed::Plain("redis://localhost:6380".into()))
        );
        assert_eq!(
            parse("tcp://h:1", true),
            Ok(Parsed::Plain("rediss://h:1".into()))
        );
        assert_eq!(
            parse("redis+cluster://u:p@a:1?addr=b:2&addr=c:3", false),
            Ok(Parsed::Cluster(vec![
                "redis://u:p@a:1".into(),
                "redis://u:p@b:2".into(),
                "redis://u:p@c:3".into()
            ]))
        );
        let Ok(Parsed::Sentinel(s)) = parse(
            "redis+sentinel://:secret@s1:26379/2?addr=s2:26379&sentinel_master_name=mymaster&sentinel_password=x",
            false,
        ) else {
            panic!("not a sentinel address");
        };
        assert_eq!(s.sentinels, vec!["redis://s1:26379", "redis://s2:26379"]);
        assert_eq!(s.master_name, "mymaster");
        assert_eq!(s.password, "secret");
        assert_eq!(s.sentinel_password, "x");
        assert_eq!(s.db, Some(2));
        assert!(parse("unix:///tmp/x", false).is_err());
        assert!(parse("redis+cluster://a:1?bogus=1", false).is_err());
        assert!(parse("redis+sentinel://a:1/x", false).is_err());
        assert!(parse("", false).is_err());
        assert!(parse("redis://", false).is_err());
    }
}
