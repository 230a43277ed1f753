-- Applies one (topic, partition) batch atomically, or nothing.
--
-- KEYS: watermark hash, closed-writes token, dedup mark directory, bucket-writes token,
--       B bucket hashes, S conversation keys
-- ARGV: 1 watermark field, 2 expected watermark ('' = none yet), 3 new watermark,
--       4 B, 5 S, 6 now (the worker's clock, seconds), 7 conversation TTL ms,
--       8 dedup mark key prefix, 9 the marks' 16-byte digests, concatenated,
--       10 '1' when a bucket written is closed (older than the previous one), else '0',
--       11 the start of the marks' bucket, 12 when that bucket expires (seconds),
--       13 the dedup horizon (seconds), 14 the directory's "w" token when the caller looked
--       the marks up ('' = not looked up): unchanged, no mark was written since, so they are
--       not looked up again, 15 the prefix of the bitmaps of the mark hashes created,
--       16 a new token (unique): the directory's "w" when this apply writes marks, and the
--          closed-writes and bucket-writes tokens when it writes buckets (see the end),
--       then per bucket: expire-at seconds ('0' = never), field count, and per field:
--         name, increment (> 0), limit (2^63 - 1 - increment, the largest value the field
--         may hold before the increment, as a decimal string),
--       then per conversation: its state ('' = unresolved: delete) and the state it must
--         still hold ('*' = any): a conversation the customer agent may revoke meanwhile
--         (worker/customers.py) is written only if nobody changed it since it was read
-- Dedup mark keys are built here from the prefix (marks.lua, the prelude): they carry the
-- same hash tag as KEYS[1], so every key lies in its slot (Redis Cluster). Passing one blob
-- instead of a key per event keeps the command small.
--
-- A failed script is not rolled back, so every check comes before the first write.
-- Returns {'ok'}; {'watermark', current} when another worker applied this partition
-- since the caller read it; {'state', key} when a conversation is no longer as read; {'duplicate', digest} when a dedup mark appeared meanwhile;
-- {'overflow', key, field} when an increment would take a sum past 2^63 - 1.
-- Any of these means: nothing written, read again and recompute. {'corrupt', key, field}
-- when a stored sum is not an integer (written by hand?): nothing written either.

-- Writes the batch's marks into the bucket that starts at ARGV[11] (opened with enough
-- shards for the newest bucket before it), drops the directory's expired buckets, and
-- records whether marks of the previous layout may exist (only before the first write).
local function add_marks(directory, prefix, mark_list, legacy_until, now, digest_list, numbers)
  local start, expire_at, horizon = ARGV[11], ARGV[12], tonumber(ARGV[13])
  if legacy_until == nil then  -- state written before this layout keeps its marks a horizon
    local before = redis.call('EXISTS', KEYS[1]) == 1 and now + horizon or 0
    redis.call('HSET', directory, 'v2', before)
  end
  local current, previous = nil, nil
  for _, bucket in ipairs(mark_list) do
    if not bucket.live then
      redis.call('HDEL', directory, bucket.start, bucket.start .. ':c')
    elseif bucket.start == start then
      current = bucket
    elseif tonumber(bucket.start) < tonumber(start)
        and (previous == nil or tonumber(bucket.start) > tonumber(previous.start)) then
      previous = bucket
    end
  end
  if current == nil then
    local shards = FIRST
    if previous ~= nil then
      local total = previous.count
      for g = 1, #previous.gens - 1 do
        total = total + previous.gens[g] * PER_SHARD
      end
      shards = math.max(1, math.ceil(total * 1.25 / PER_SHARD))
    end
    current = {start = start, gens = {shards}, count = 0}
  end
  -- the horizon changed since this bucket opened (its start can be a multiple of both):
  -- it lasts the longer of the two, and every hash written now is made to
  local stretch = current.expire_at ~= nil and current.expire_at ~= tonumber(expire_at)
  if stretch then
    expire_at = math.max(current.expire_at, tonumber(expire_at))
  end
  local gens, count = current.gens, current.count
  local groups, head = {}, prefix .. start .. ':'
  local shard_of_key, generation_of_key, created = {}, {}, ARGV[15] .. start .. ':'
  for i = 1, #digest_list do
    local shards = gens[#gens]
    if count >= shards * PER_SHARD then
      gens[#gens + 1] = shards * GROWTH
      shards, count = shards * GROWTH, 0
    end
    local shard = numbers[i] % shards
    local key = head .. #gens .. ':' .. shard
    local group = groups[key]
    if group == nil then
      group = {}
      groups[key] = group
      shard_of_key[key], generation_of_key[key] = shard, #gens
    end
    group[#group + 1] = digest_list[i]
    group[#group + 1] = '1'
    count = count + 1
  end
  per_key('HSET', groups)
  -- a hash's expiry is set once, when it is created: a bitmap per generation says which were
  local bitmaps = {}
  for key, shard in pairs(shard_of_key) do
    local generation = generation_of_key[key]
    local bitmap = bitmaps[generation]
    if bitmap == nil then
      bitmap = redis.call('GET', created .. generation) or ''
      bitmaps[generation] = bitmap
    end
    local byte = string.byte(bitmap, math.floor(shard / 8) + 1) or 0
    if bit.band(byte, bit.rshift(128, shard % 8)) == 0 then
      redis.call('EXPIREAT', key, expire_at)
      redis.call('SETBIT', created .. generation, shard, 1)
    elseif stretch then
      redis.call('EXPIREAT', key, expire_at, 'GT')
    end
  end
  for generation in pairs(bitmaps) do
    redis.call('EXPIREAT', created .. generation, expire_at, 'GT')
    redis.call('EXPIREAT', created .. generation, expire_at, 'NX')
  end
  redis.call('HSET', directory, start, expire_at .. ' ' .. table.concat(gens, ' '),
    start .. ':c', count)
  redis.call('HSET', directory, 'w', ARGV[16])
end

local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then
  return {'watermark', current}
end

local buckets, conversations = tonumber(ARGV[4]), tonumber(ARGV[5])
local now, prefix, digests = tonumber(ARGV[6]), ARGV[8], ARGV[9]
local directory = KEYS[3]
local mark_list, legacy_until, legacy = mark_buckets(directory, now)
local digest_list, numbers = split(digests)
if ARGV[14] == '' or ARGV[14] ~= mark_token(directory) then
  for i in pairs(marked(prefix, mark_list, legacy, digest_list, numbers)) do
    return {'duplicate', digest_list[i]}
  end
end

-- Headroom: a stored value above its limit would overflow (a missing one is 0; a limit
-- below 0 means the increment alone is too large). Stored values are canonical decimal
-- integers (checked), so between non-negative ones a longer string is larger, and strings
-- of one length compare as numbers do.
local function integer(value)
  return #value <= 20 and (value == '0' or string.match(value, '^%-?[1-9]%d*$') ~= nil)
end

local arg = 17
for b = 1, buckets do
  local fields = tonumber(ARGV[arg + 1])
  arg = arg + 2
  local names = {}
  for f = 1, fields do
    names[f] = ARGV[arg + 3 * (f - 1)]
  end
  local stored = redis.call('HMGET', KEYS[4 + b], unpack(names))
  for f = 1, fields do
    local value, limit = stored[f] or '0', ARGV[arg + 3 * (f - 1) + 2]
    if not integer(value) then
      return {'corrupt', KEYS[4 + b], names[f]}
    end
    if string.sub(limit, 1, 1) == '-' or string.sub(value, 1, 1) ~= '-'
        and (#value > #limit or (#value == #limit and value > limit)) then
      return {'overflow', KEYS[4 + b], names[f]}
    end
  end
  arg = arg + 3 * fields
end

for c = 1, conversations do
  local expected = ARGV[arg + 2 * (c - 1) + 1]
  if expected ~= '*' and (redis.call('GET', KEYS[4 + buckets + c]) or '') ~= expected then
    return {'state', KEYS[4 + buckets + c]}
  end
end

if #digests > 0 then
  add_marks(directory, prefix, mark_list, legacy_until, now, digest_list, numbers)
end

local key = 4
arg = 17
for _ = 1, buckets do
  key = key + 1
  local expire_at = ARGV[arg]
  local fields = tonumber(ARGV[arg + 1])
  arg = arg + 2
  for _ = 1, fields do
    redis.call('HINCRBY', KEYS[key], ARGV[arg], ARGV[arg + 1])
    arg = arg + 3
  end
  if expire_at ~= '0' then
    redis.call('EXPIREAT', KEYS[key], expire_at)
  end
end

for _ = 1, conversations do
  key = key + 1
  if ARGV[arg] == '' then
    redis.call('DEL', KEYS[key])
  else
    redis.call('SET', KEYS[key], ARGV[arg], 'PX', ARGV[7])
  end
  arg = arg + 2
end

-- The exporter keeps sums between scrapes while these two tokens stand: closed buckets'
-- while the closed-writes token does (a fresh one at each write into a closed bucket, and
-- one the first time the channel's buckets are written, so a channel removed and counted
-- again never finds the token of its previous life), all sums while the bucket-writes
-- token does (a fresh one at every write).
if ARGV[10] == '1' then
  redis.call('SET', KEYS[2], ARGV[16])
elseif buckets > 0 then
  redis.call('SET', KEYS[2], ARGV[16], 'NX')
end
if buckets > 0 then
  redis.call('SET', KEYS[4], ARGV[16])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {'ok'}
