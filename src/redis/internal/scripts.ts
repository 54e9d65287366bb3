// The Lua scripts of the Redis store. Each runs atomically on the server, so a version check and
// the write it guards, or an owner check and the delete it guards, cannot interleave with another
// client's commands.
//
// Replies are numbers, strings and arrays only: never a Lua boolean, which a RESP3 connection
// (ioredis 6's default) would turn into a boolean reply where RESP2 gives a nil.
//
// Keys the scripts build from arguments (`recordPrefix .. id`) are not declared in KEYS; they
// share the prefix of the declared ones, so with a hash tag in the prefix they share a cluster slot.

/** A script and its SHA-1, which EVALSHA runs it by. */
export interface Script {
  readonly name: string;
  readonly source: string;
}

/**
 * Reads a record. KEYS: record. Reply: `[]` when absent, `[version, sealed]` otherwise, and
 * `['0', '']` for a key that is not a record (another type, or a hash without both fields): an
 * empty sealed string fails to open, so the sealed store discards it and reports tamper.
 */
export const READ: Script = {
  name: 'read',
  source: `
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {} end
if kind ~= 'hash' then return {'0', ''} end
local found = redis.call('HMGET', KEYS[1], 'v', 's')
if not found[1] or not found[2] then return {'0', ''} end
return found
`,
};

/**
 * Writes a record, unconditionally or if its version still is the expected one.
 * KEYS: version counter, id index, record. ARGV: id, sealed, origin, channel, expected
 * (`*`: unconditional, empty: only when absent, else the version). Reply: the new version, or 0
 * when the condition failed. Versions come from one counter per store, so they never repeat, even
 * after a delete: a writer holding a version read before a delete can never match a new record.
 */
export const WRITE: Script = {
  name: 'write',
  source: `
local kind = redis.call('TYPE', KEYS[3])['ok']
local current = false
if kind == 'hash' then current = redis.call('HGET', KEYS[3], 'v') end
local expected = ARGV[5]
if expected ~= '*' then
  if expected == '' then
    if current then return 0 end
  elseif current ~= expected then
    return 0
  end
end
local version = redis.call('INCR', KEYS[1])
if kind ~= 'none' then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[3], 'v', version, 's', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[4], cjson.encode({t = 'w', o = ARGV[3], id = ARGV[1], v = version, s = ARGV[2]}))
return version
`,
};

/**
 * Writes several records at once (a key rotation re-seals them all). KEYS: version counter, id
 * index. ARGV: record key prefix, origin, channel, then id and sealed pairs. Reply: their count.
 */
export const WRITE_MANY: Script = {
  name: 'write-many',
  source: `
local count = 0
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local version = redis.call('INCR', KEYS[1])
  redis.call('DEL', key)
  redis.call('HSET', key, 'v', version, 's', ARGV[i + 1])
  redis.call('SADD', KEYS[2], id)
  redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'w', o = ARGV[2], id = id, v = version, s = ARGV[i + 1]}))
  count = count + 1
end
return count
`,
};

/**
 * Removes a record and announces it. KEYS: version counter, id index, record. ARGV: id, origin,
 * channel. Reply: 1 when a record was removed, 0 when there was none.
 */
export const REMOVE: Script = {
  name: 'remove',
  source: `
local existed = redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
if existed == 0 then return 0 end
local version = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'd', o = ARGV[2], id = ARGV[1], v = version}))
return 1
`,
};

/**
 * Lists the ids that have a record, dropping index entries whose record is gone. KEYS: id index.
 * ARGV: record key prefix. Reply: the ids.
 */
export const IDS: Script = {
  name: 'ids',
  source: `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then
    out[#out + 1] = id
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
`,
};

/**
 * Removes every record of the store and announces each removal. The version counter stays, so
 * versions never repeat. KEYS: version counter, id index. ARGV: record key prefix, origin,
 * channel. Reply: how many records were removed.
 */
export const CLEAR: Script = {
  name: 'clear',
  source: `
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('DEL', ARGV[1] .. id) == 1 then
    local version = redis.call('INCR', KEYS[1])
    redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'd', o = ARGV[2], id = id, v = version}))
    count = count + 1
  end
end
redis.call('DEL', KEYS[2])
return count
`,
};

/**
 * Takes a lock: `SET NX PX` with the owner token. KEYS: lock. ARGV: owner, ttl ms. Reply:
 * `[1, 0]` when taken, `[0, pttl]` when another owner holds it. A lock key without an expiry
 * (written by hand, or by a bug) is given one, so it cannot block every instance forever.
 */
export const LOCK: Script = {
  name: 'lock',
  source: `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {0, ttl}
`,
};

/**
 * Releases a lock only if this owner still holds it (compare-and-delete), then wakes waiters.
 * KEYS: lock. ARGV: owner, channel, id. Reply: 1 when released, 0 when another owner holds it
 * (or nobody): a holder whose lock expired never deletes its successor's lock.
 */
export const UNLOCK: Script = {
  name: 'unlock',
  source: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({t = 'u', id = ARGV[3]}))
return 1
`,
};

/**
 * Checks that a lock is still held by this owner. KEYS: lock. ARGV: owner. Reply: its remaining
 * time in ms, or -2 when another owner holds it or it is gone.
 */
export const CHECK: Script = {
  name: 'check',
  source: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
return redis.call('PTTL', KEYS[1])
`,
};
