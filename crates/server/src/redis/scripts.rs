//! The Lua scripts: each step that must be atomic is one script over the keys of one session (or
//! one room), which share a hash tag, so the same scripts run on Redis Cluster.
//!
//! A session is one hash, `dws:{T}:s` (T: the token in hex): `owner`, `node` (the node that
//! drives it, "" for none), `gen` (ownership generation: every claim bumps it and fences the
//! previous owner), `out`/`ack` (last own message stored / confirmed by the client), `bytes`
//! (payload bytes of the stored unconfirmed ones), `in`/`dlv` (last client message stored /
//! handed to the application), `o:<seq>` and `i:<seq>` (payloads), `r:<room>` (the last room
//! message appended). One key per session means an eviction or expiry takes all of it or none.
//! `dws:{T}:t` is its tombstone (why a resume is refused). A room is `dws:r:{R}`: `seq` and its
//! last messages `l:<seq>`.

/// KEYS: session, tombstone. ARGV: node, owner, ttl ms.
/// → {"ok", gen, fields...} | {"tomb", status} | {"missing"} | {"foreign"}
pub(super) const CLAIM: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  local tomb = redis.call('GET', KEYS[2])
  if tomb then return {'tomb', tomb} end
  return {'missing'}
end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return {'foreign'} end
local prev = redis.call('HGET', KEYS[1], 'node')
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if prev and prev ~= '' and prev ~= ARGV[1] then
  redis.call('PUBLISH', 'dws:n:' .. prev, 'kick\n' .. KEYS[1] .. '\n' .. gen)
end
return {'ok', gen, redis.call('HGETALL', KEYS[1])}
"#;

/// KEYS: session. ARGV: node, owner, ttl ms. → "ok" | "exists"
pub(super) const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'node', ARGV[1], 'gen', 1, 'out', 0, 'ack', 0, 'bytes', 0, 'in', 0, 'dlv', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 'ok'
"#;

/// The common head of the scripts of an owner: fencing ("fenced": another node drives the session;
/// "regen": this node claimed it again meanwhile, so the step must be retried with the new
/// generation), then the application's progress.
/// ARGV: node, gen, ttl ms, dlv, ...
const FENCE: &str = r#"
local s = KEYS[1]
local head = redis.call('HMGET', s, 'gen', 'node', 'in', 'dlv', 'out', 'bytes', 'ack')
local gen = head[1]
if not gen then return 'missing' end
if head[2] ~= ARGV[1] then return 'fenced' end
if gen ~= ARGV[2] then return 'regen' end
local last_in = tonumber(head[3])
local function delivered(upto)
  local old = tonumber(head[4])
  upto = math.min(upto, last_in)
  for seq = old + 1, upto do redis.call('HDEL', s, 'i:' .. seq) end
  if upto > old then redis.call('HSET', s, 'dlv', upto) end
end
"#;

/// KEYS: session. ARGV: node, gen, ttl ms, first seq, payloads... → "ok" | "fenced" | "regen" | "missing"
/// Client messages: stored before they are acknowledged; a retry stores nothing twice.
pub(super) fn append_in() -> String {
    format!(
        "{FENCE}{}",
        r#"
local first = tonumber(ARGV[4])
for k = 5, #ARGV do
  local seq = first + k - 5
  if seq == last_in + 1 then
    redis.call('HSET', s, 'i:' .. seq, ARGV[k])
    last_in = seq
  end
end
redis.call('HSET', s, 'in', last_in)
redis.call('PEXPIRE', s, ARGV[3])
return 'ok'
"#
    )
}

/// KEYS: session. ARGV: node, gen, ttl ms, dlv, ack, first seq, room count n, n × (room, seq or
/// "-" to leave), payloads... → "ok" | "fenced" | "missing"
/// Own messages (stored before they are transmitted), the client's acknowledgements, the
/// application's progress and room positions, in one step; a retry stores nothing twice.
pub(super) fn sync() -> String {
    format!(
        "{FENCE}{}",
        r#"
delivered(tonumber(ARGV[4]))
local out = tonumber(head[5])
local bytes = tonumber(head[6])
local rooms = tonumber(ARGV[7])
local base = 7 + 2 * rooms
local first = tonumber(ARGV[6])
for k = base + 1, #ARGV do
  local seq = first + k - base - 1
  if seq == out + 1 then
    redis.call('HSET', s, 'o:' .. seq, ARGV[k])
    bytes = bytes + #ARGV[k]
    out = seq
  end
end
local ack = tonumber(head[7])
local upto = math.min(tonumber(ARGV[5]), out)
for seq = ack + 1, upto do
  bytes = bytes - redis.call('HSTRLEN', s, 'o:' .. seq)
  redis.call('HDEL', s, 'o:' .. seq)
end
if upto < ack then upto = ack end
redis.call('HSET', s, 'out', out, 'ack', upto, 'bytes', bytes)
for k = 1, rooms do
  local room, seq = ARGV[6 + 2 * k], ARGV[7 + 2 * k]
  if seq == '-' then redis.call('HDEL', s, 'r:' .. room) else redis.call('HSET', s, 'r:' .. room, seq) end
end
redis.call('PEXPIRE', s, ARGV[3])
return 'ok'
"#
    )
}

/// KEYS: session, tombstone. ARGV: node, gen, status ("" for none), tombstone ttl ms.
/// → "ok" | "fenced" | "missing"
pub(super) const END: &str = r#"
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return 'missing' end
if gen ~= ARGV[2] or redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 'fenced' end
redis.call('DEL', KEYS[1])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
return 'ok'
"#;

/// KEYS: session. ARGV: payload, max messages, max bytes.
/// → "forwarded" (to the node driving it) | "stored" | "full" | "missing"
/// A message from another node: handed to the session's node, or, when no node listens (it
/// crashed or stopped), numbered and stored here; that node, if it comes back, is fenced.
pub(super) const DELIVER: &str = r#"
local s = KEYS[1]
if redis.call('EXISTS', s) == 0 then return 'missing' end
local node = redis.call('HGET', s, 'node')
if node ~= '' and redis.call('PUBLISH', 'dws:n:' .. node, 'send\n' .. s .. '\n' .. ARGV[1]) > 0 then
  return 'forwarded'
end
local out = tonumber(redis.call('HGET', s, 'out'))
local bytes = tonumber(redis.call('HGET', s, 'bytes'))
if out - tonumber(redis.call('HGET', s, 'ack')) >= tonumber(ARGV[2]) or bytes + #ARGV[1] > tonumber(ARGV[3]) then
  return 'full'
end
out = out + 1
redis.call('HSET', s, 'o:' .. out, ARGV[1], 'out', out, 'bytes', bytes + #ARGV[1], 'node', '')
return 'stored'
"#;

/// KEYS: room. ARGV: payload, history length, room name. → the message's number in the room
/// One order per room: numbered, kept for late or resuming members, announced to every node.
pub(super) const PUBLISH: &str = r#"
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'l:' .. seq, ARGV[1])
local old = seq - tonumber(ARGV[2])
if old > 0 then redis.call('HDEL', KEYS[1], 'l:' .. old) end
redis.call('PUBLISH', 'dws:rc:' .. ARGV[3], seq .. '\n' .. ARGV[1])
return seq
"#;
