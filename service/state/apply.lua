-- Applies one (topic, partition) batch atomically, or nothing.
--
-- KEYS: watermark hash, closed-writes counter, B bucket hashes, S conversation keys
-- ARGV: 1 watermark field, 2 expected watermark ('' = none yet), 3 new watermark,
--       4 B, 5 S, 6 mark TTL ms, 7 conversation TTL ms,
--       8 dedup mark key prefix, 9 the marks' 16-byte digests, concatenated,
--       10 '1' when a bucket written is closed (older than the previous one), else '0',
--       then per bucket: expire-at seconds ('0' = never), field count, field, amount, ...
--       then per conversation: its state ('' = unresolved: delete)
-- Dedup mark keys are built here from the prefix: they carry the same hash tag as KEYS[1],
-- so every key lies in its slot (Redis Cluster). Passing one blob instead of a key per
-- event keeps the command small.
--
-- Returns {'ok'}; {'watermark', current} when another worker applied this partition
-- since the caller read it; {'duplicate', key} when a dedup mark appeared meanwhile.
-- Either conflict means: nothing written, read again and recompute.

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
for _, mark in ipairs(marks) do
  redis.call('SET', mark, '1', 'PX', ARGV[6])
end

local key = 2
local arg = 11
for _ = 1, buckets do
  key = key + 1
  local expire_at = ARGV[arg]
  local fields = tonumber(ARGV[arg + 1])
  arg = arg + 2
  for _ = 1, fields do
    redis.call('HINCRBY', KEYS[key], ARGV[arg], ARGV[arg + 1])
    arg = arg + 2
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
