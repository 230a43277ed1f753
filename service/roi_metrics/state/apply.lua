-- Applies one (topic, partition) batch atomically, or nothing.
--
-- KEYS: watermark hash, closed-writes counter, B bucket hashes, S conversation keys
-- ARGV: 1 watermark field, 2 expected watermark ('' = none yet), 3 new watermark,
--       4 B, 5 S, 6 mark TTL ms, 7 conversation TTL ms,
--       8 dedup mark key prefix, 9 the marks' 16-byte digests, concatenated,
--       10 '1' when a bucket written is closed (older than the previous one), else '0',
--       then per bucket: expire-at seconds ('0' = never), field count, and per field:
--         name, increment (> 0), limit (2^63 - 1 - increment, the largest value the field
--         may hold before the increment, as a decimal string),
--       then per conversation: its state ('' = unresolved: delete)
-- Dedup mark keys are built here from the prefix: they carry the same hash tag as KEYS[1],
-- so every key lies in its slot (Redis Cluster). Passing one blob instead of a key per
-- event keeps the command small.
--
-- A failed script is not rolled back, so every check comes before the first write.
-- Returns {'ok'}; {'watermark', current} when another worker applied this partition
-- since the caller read it; {'duplicate', key} when a dedup mark appeared meanwhile;
-- {'overflow', key, field} when an increment would take a sum past 2^63 - 1.
-- Any of these means: nothing written, read again and recompute. {'corrupt', key, field}
-- when a stored sum is not an integer (written by hand?): nothing written either.

local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then
  return {'watermark', current}
end

local buckets, conversations = tonumber(ARGV[4]), tonumber(ARGV[5])
local prefix, digests = ARGV[8], ARGV[9]
local marks = {}
for i = 1, #digests, 16 do
  local mark = prefix .. string.sub(digests, i, i + 15)
  if redis.call('EXISTS', mark) == 1 then
    return {'duplicate', mark}
  end
  marks[#marks + 1] = mark
end

-- Headroom: a stored value above its limit would overflow (a missing one is 0; a limit
-- below 0 means the increment alone is too large). Stored values are canonical decimal
-- integers (checked), so between non-negative ones a longer string is larger, and strings
-- of one length compare as numbers do.
local function integer(value)
  return #value <= 20 and (value == '0' or string.match(value, '^%-?[1-9]%d*$') ~= nil)
end

local arg = 11
for b = 1, buckets do
  local fields = tonumber(ARGV[arg + 1])
  arg = arg + 2
  local names = {}
  for f = 1, fields do
    names[f] = ARGV[arg + 3 * (f - 1)]
  end
  local stored = redis.call('HMGET', KEYS[2 + b], unpack(names))
  for f = 1, fields do
    local value, limit = stored[f] or '0', ARGV[arg + 3 * (f - 1) + 2]
    if not integer(value) then
      return {'corrupt', KEYS[2 + b], names[f]}
    end
    if string.sub(limit, 1, 1) == '-' or string.sub(value, 1, 1) ~= '-'
        and (#value > #limit or (#value == #limit and value > limit)) then
      return {'overflow', KEYS[2 + b], names[f]}
    end
  end
  arg = arg + 3 * fields
end

local writes = redis.call('GET', KEYS[2])
if writes and not integer(writes) then
  return {'corrupt', KEYS[2], ''}
end

for _, mark in ipairs(marks) do
  redis.call('SET', mark, '1', 'PX', ARGV[6])
end

local key = 2
arg = 11
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
  arg = arg + 1
end

if ARGV[10] == '1' then
  redis.call('INCR', KEYS[2]) -- the exporter re-reads closed buckets when this moves
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {'ok'}
