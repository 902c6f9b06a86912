//! Lua scripts of the Redis engine. Each runs atomically on the server, so
//! a publish (checks, append, expiries, PUBLISH) or a history read (meta and
//! range) is one step no other client can interleave with.

use std::sync::LazyLock;

use redis::Script;

/// Publish.
///
/// KEYS: 1 stream, 2 meta, 3 idempotency result, 4 PUB/SUB channel.
/// ARGV: 1 protobuf Publication, 2 history size, 3 history TTL (ms),
/// 4 meta TTL (ms), 5 epoch to use if the meta is missing, 6 "1" with
/// history, 7 idempotency TTL (ms, 0 = no key), 8 version, 9 version epoch,
/// 10 the publish command (`publish`, or `spublish` on a cluster, where the
/// channel shares the keys' slot), 11 "1" for a delta publish (the message
/// then carries the previous stream entry too).
///
/// Returns `{kind, "offset:epoch"}`: kind `p` published, `s` suppressed by
/// the idempotency key, `v` suppressed as a stale version.
pub(super) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local stream_key, meta_key, result_key, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local data = ARGV[1]
local result_ttl = tonumber(ARGV[7])
if result_ttl > 0 then
  local cached = redis.call("get", result_key)
  if cached then
    return {"s", cached}
  end
end
local offset, epoch, prev = 0, "", nil
if ARGV[6] == "1" then
  local meta = redis.call("hmget", meta_key, "e", "s", "v", "ve")
  epoch = meta[1]
  if not epoch then
    epoch = ARGV[5]
    redis.call("hset", meta_key, "e", epoch)
  end
  local version = tonumber(ARGV[8])
  if version > 0 then
    local last = tonumber(meta[3] or "0")
    local last_epoch = meta[4] or ""
    if last > 0 and last_epoch == ARGV[9] and version <= last then
      redis.call("pexpire", meta_key, ARGV[4])
      return {"v", (meta[2] or "0") .. ":" .. epoch}
    end
    redis.call("hset", meta_key, "v", ARGV[8], "ve", ARGV[9])
  end
  offset = redis.call("hincrby", meta_key, "s", 1)
  if offset == 1 then
    -- A new stream incarnation: whatever is left of an old one goes.
    redis.call("del", stream_key)
  elseif ARGV[11] == "1" then
    -- Retained offsets are contiguous, so the newest entry is offset - 1.
    local last = redis.call("xrevrange", stream_key, "+", "-", "COUNT", 1)
    if #last > 0 then
      prev = last[1][2][2]
    end
  end
  redis.call("xadd", stream_key, "MAXLEN", ARGV[2], string.format("%d", offset), "d", data)
  redis.call("pexpire", stream_key, ARGV[3])
  redis.call("pexpire", meta_key, ARGV[4])
end
-- "%d": tostring would switch to exponent notation for large offsets.
local position = string.format("%d", offset) .. ":" .. epoch
if prev then
  redis.call(ARGV[10], channel, "d" .. position .. ":" .. string.len(prev) .. ":" .. prev .. data)
else
  redis.call(ARGV[10], channel, "p" .. position .. ":" .. data)
end
if result_ttl > 0 then
  redis.call("set", result_key, position, "PX", ARGV[7])
end
return {"p", position}
"#,
    )
});

/// History read.
///
/// KEYS: 1 stream, 2 meta. ARGV: 1 epoch to use if the meta is missing,
/// 2 meta TTL (ms), 3 mode (`none`, `fwd`, `rev`), 4 first bound (`fwd`:
/// lowest id, `rev`: highest id), 5 count (-1 = all).
///
/// Returns `{top offset, epoch, entries}` with entries as `XRANGE` gives
/// them.
pub(super) static HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local stream_key, meta_key = KEYS[1], KEYS[2]
local meta = redis.call("hmget", meta_key, "e", "s")
local epoch = meta[1]
if not epoch then
  epoch = ARGV[1]
  redis.call("hset", meta_key, "e", epoch)
end
redis.call("pexpire", meta_key, ARGV[2])
local top = meta[2] or "0"
local entries = {}
local count = tonumber(ARGV[5])
if ARGV[3] == "fwd" then
  if count < 0 then
    entries = redis.call("xrange", stream_key, ARGV[4], "+")
  else
    entries = redis.call("xrange", stream_key, ARGV[4], "+", "COUNT", count)
  end
elseif ARGV[3] == "rev" then
  if count < 0 then
    entries = redis.call("xrevrange", stream_key, ARGV[4], "-")
  else
    entries = redis.call("xrevrange", stream_key, ARGV[4], "-", "COUNT", count)
  end
end
return {top, epoch, entries}
"#,
    )
});

/// Adds or refreshes a presence entry.
///
/// KEYS: 1 expiry sorted set, 2 data hash. ARGV: 1 expiry (unix ms),
/// 2 client id, 3 protobuf ClientInfo, 4 key TTL (ms).
pub(super) static PRESENCE_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call("zadd", KEYS[1], ARGV[1], ARGV[2])
redis.call("hset", KEYS[2], ARGV[2], ARGV[3])
redis.call("pexpire", KEYS[1], ARGV[4])
redis.call("pexpire", KEYS[2], ARGV[4])
return 1
"#,
    )
});

/// Reads presence after dropping expired entries.
///
/// KEYS: 1 expiry sorted set, 2 data hash. ARGV: 1 now (unix ms).
/// Returns the hash as a flat `{client, info, …}` array.
pub(super) static PRESENCE_GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local expired = redis.call("zrangebyscore", KEYS[1], "-inf", ARGV[1])
if #expired > 0 then
  for _, id in ipairs(expired) do
    redis.call("hdel", KEYS[2], id)
  end
  redis.call("zremrangebyscore", KEYS[1], "-inf", ARGV[1])
end
return redis.call("hgetall", KEYS[2])
"#,
    )
});

/// Removes a presence entry. KEYS: 1 expiry sorted set, 2 data hash.
/// ARGV: 1 client id.
pub(super) static PRESENCE_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call("zrem", KEYS[1], ARGV[1])
redis.call("hdel", KEYS[2], ARGV[1])
return 1
"#,
    )
});
