import { GC_GRACE_MS } from './deadline.js';

/**
 * Lua scripts of the Redis store. Each touches only keys of one principal (one `{principal}` hash
 * tag, so one Cluster slot), and each is one round trip. Timestamps are epoch milliseconds; they
 * fit Lua's doubles exactly and are formatted with %d before going back to Redis.
 */

// Records whose end is on the caller's clock: the end is written as the key's absolute expiry plus
// GC_GRACE_MS, so Redis only collects a key a grace after its end, and whether a record is still
// there is decided against the caller's now (the memory store's semantics, on the same clock).
const ENDS = `
local GRACE = ${GC_GRACE_MS}
local function alive(key, now)
  local at = redis.call('PEXPIRETIME', key)
  return at == -1 or (at >= 0 and at - GRACE > now)
end
local function expire_at(ends) return string.format('%d', ends + GRACE) end
`;

// Revocation state of a token plus the session, slid to its next idle expiry.
// KEYS: revoked token, revoked grant, cutoff, session. ARGV: now, idle ms, max lifetime ms, has session.
const REQUEST_STATE = `${ENDS}
local function request_state()
  local now = tonumber(ARGV[1])
  -- Looked up first, ends checked only for what is there: a request without revocations pays
  -- the two lookups it always did.
  local revoked = 0
  if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 and (alive(KEYS[1], now) or alive(KEYS[2], now)) then revoked = 1 end
  local cutoff = redis.call('GET', KEYS[3])
  if cutoff and not alive(KEYS[3], now) then cutoff = false end
  local session = false
  if ARGV[4] == '1' and alive(KEYS[4], now) then
    -- The idle expiry slides in the same key lookup as the read (one lookup and one command
    -- fewer per request); a record nearer its lifetime's end than that is then capped at it.
    local idle_end = now + tonumber(ARGV[2])
    -- ARGV[9] (client cache): slide only once the record has lost this fraction of its idle
    -- window, so that a cached caller's reads do not write (every write is an invalidation).
    local lazy = tonumber(ARGV[9] or '0')
    local fresh = false
    if lazy > 0 then
      fresh = redis.call('PEXPIRETIME', KEYS[4]) - GRACE > idle_end - tonumber(ARGV[2]) * lazy
    end
    if fresh then
      session = redis.call('GET', KEYS[4])
    else
      session = redis.call('GETEX', KEYS[4], 'PXAT', expire_at(idle_end))
    end
    if session and not fresh then
      local created = tonumber(string.match(session, '^(%w+)|') or '', 36)
      if not created then
        -- Unreadable (no session to the caller either): it must not live on by being used.
        redis.call('DEL', KEYS[4])
      elseif created + tonumber(ARGV[3]) < idle_end then
        redis.call('PEXPIREAT', KEYS[4], expire_at(created + tonumber(ARGV[3])))
      end
    end
  end
  return revoked, cutoff or '', session or ''
end
`;

export const LOAD_STATE = {
  numberOfKeys: 4,
  lua: `${REQUEST_STATE}
return {request_state()}
`,
};

// The rate-limit counter: counter.ts's algorithm, line for line (the agreement test holds both to
// rate-limiter-flexible). The value is the points consumed (as the library keeps it); the count's
// end is on the caller's clock, kept like every record's (ENDS: the key's expiry less the grace).
// Needs ENDS before it.
const COUNTER = `
local function counter_end(key, now)
  local at = redis.call('PEXPIRETIME', key)
  if at >= 0 and at - GRACE > now then return at - GRACE end
  return nil
end

local function counter_read(key, now)
  local value = redis.call('GET', key)
  if not value then return nil end
  local reset_at = counter_end(key, now)
  if not reset_at then return nil end
  return tonumber(value), reset_at
end

local function counter_add(key, now, change, points, duration, block)
  local reset_at = counter_end(key, now)
  local consumed
  if reset_at then
    consumed = redis.call('INCRBY', key, change)
  else
    consumed, reset_at = change, now + duration
    redis.call('SET', key, change, 'PXAT', expire_at(reset_at))
  end
  if change > 0 and block > 0 and consumed > points and consumed <= points + change then
    reset_at = now + block
    redis.call('PEXPIREAT', key, expire_at(reset_at))
  end
  return consumed, reset_at - now
end
`;

/** Adds points to a counter (negative: a reward). KEYS: counter. ARGV: now, change, points, window ms, block ms. */
export const COUNTER_ADD = {
  numberOfKeys: 1,
  lua: `${ENDS}${COUNTER}
local consumed, ms = counter_add(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
return {consumed, ms}
`,
};

/**
 * The hot path in one command: the state, one point of the client's request counter, and on a
 * single node the address's failed-attempt counter read.
 */
export const LOAD_REQUEST = {
  // Variable: 5 keys, or 6 with the counter to read (it may live in another Cluster slot).
  numberOfKeys: undefined,
  // KEYS: as request_state, then the counter to consume, [the counter to read].
  // ARGV: as request_state, then the consumed counter's points, window ms, block ms, the points
  // to take (1; more when the client cache takes a lease of them), and request_state's lazy slide.
  lua: `${REQUEST_STATE}${COUNTER}
local revoked, cutoff, session = request_state()
local now = tonumber(ARGV[1])
local consumed, ms = counter_add(KEYS[5], now, tonumber(ARGV[8] or '1'), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
local peeked, peeked_ms = '', 0
if KEYS[6] then
  local count, reset_at = counter_read(KEYS[6], now)
  if count then peeked, peeked_ms = count, reset_at - now end
end
return {revoked, cutoff, session, consumed, ms, peeked, peeked_ms}
`,
};

// Shared by the session scripts: members of the index whose record ended (at `now`) are pruned,
// live ones returned oldest first. Records are built from ARGV[1] (the principal's session key prefix).
const LIVE_SESSIONS = `${ENDS}
local function live_sessions(index, prefix, now)
  local live = {}
  for _, member in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    if alive(prefix .. member, tonumber(now)) then
      live[#live + 1] = member
    else
      redis.call('ZREM', index, member)
    end
  end
  return live
end
`;

export const COUNT_SESSIONS = {
  numberOfKeys: 1,
  // KEYS: index. ARGV: session key prefix, now.
  lua: `${LIVE_SESSIONS}
return #live_sessions(KEYS[1], ARGV[1], ARGV[2])
`,
};

/**
 * Creates a session under the cap: refuses (reject) or ends the oldest (evict), atomically.
 * Returns {1, key, record, key, record...} for the evicted ones, so their upstreams can be told.
 */
export const CREATE_SESSION = {
  numberOfKeys: 2,
  // KEYS: index, new session. ARGV: prefix, member, value, ends, created, max, evict?, index ttl, now.
  lua: `${LIVE_SESSIONS}
local live = live_sessions(KEYS[1], ARGV[1], ARGV[9])
local max = tonumber(ARGV[6])
local result = {1}
if #live >= max then
  if ARGV[7] ~= '1' then return {0} end
  for i = 1, #live - max + 1 do
    local record = redis.call('GETDEL', ARGV[1] .. live[i])
    redis.call('ZREM', KEYS[1], live[i])
    result[#result + 1] = live[i]
    result[#result + 1] = record or ''
  end
end
redis.call('SET', KEYS[2], ARGV[3], 'PXAT', expire_at(tonumber(ARGV[4])))
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return result
`,
};

/** Revokes a grant and ends the sessions it created (bounded by the session cap). */
export const REVOKE_GRANT = {
  numberOfKeys: 2,
  // KEYS: revoked grant, index. ARGV: prefix, grant id, ends, now.
  lua: `${LIVE_SESSIONS}
redis.call('SET', KEYS[1], '1', 'PXAT', expire_at(tonumber(ARGV[3])))
local ended = 0
for _, member in ipairs(live_sessions(KEYS[2], ARGV[1], ARGV[4])) do
  local record = redis.call('GET', ARGV[1] .. member)
  if record and string.match(record, '^%w+|[^|]+|([^|]*)|') == ARGV[2] then
    redis.call('DEL', ARGV[1] .. member)
    redis.call('ZREM', KEYS[2], member)
    ended = ended + 1
  end
end
return ended
`,
};

/** Sets the principal's cutoff and ends all its sessions. */
export const REVOKE_PRINCIPAL = {
  numberOfKeys: 2,
  // KEYS: cutoff, index. ARGV: prefix, cutoff, ends, now.
  lua: `${LIVE_SESSIONS}
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', expire_at(tonumber(ARGV[3])))
local live = live_sessions(KEYS[2], ARGV[1], ARGV[4])
for _, member in ipairs(live) do redis.call('DEL', ARGV[1] .. member) end
redis.call('DEL', KEYS[2])
return #live
`,
};

/** Marks a refresh token used; reports a second use. Values are `0|json` (fresh) or `1|json` (used). */
export const USE_REFRESH = {
  numberOfKeys: 1,
  lua: `
local value = redis.call('GET', KEYS[1])
if not value then return {0, ''} end
local body = string.sub(value, 3)
if string.sub(value, 1, 1) == '1' then return {2, body} end
redis.call('SET', KEYS[1], '1|' .. body, 'KEEPTTL')
return {1, body}
`,
};

/** Adds a signing key, optionally only when the ring is empty. */
export const ADD_KEY = {
  numberOfKeys: 1,
  // KEYS: ring hash. ARGV: kid, material json, only-if-none.
  lua: `
if ARGV[3] == '1' and redis.call('HLEN', KEYS[1]) > 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
};

/** A counter read without consuming. KEYS: counter. ARGV: now. Returns {'', 0} when absent or over. */
export const PEEK_COUNTER = {
  numberOfKeys: 1,
  lua: `${ENDS}${COUNTER}
local consumed, reset_at = counter_read(KEYS[1], tonumber(ARGV[1]))
if not consumed then return {'', 0} end
return {consumed, reset_at - tonumber(ARGV[1])}
`,
};
