-- Applies one (topic, partition) batch atomically, or nothing.
--
-- KEYS: watermark hash, M dedup marks, B bucket hashes, S conversation keys
-- ARGV: 1 watermark field, 2 expected watermark ('' = none yet), 3 new watermark,
--       4 M, 5 B, 6 S, 7 mark TTL ms, 8 conversation TTL ms,
--       then per bucket: expire-at seconds ('0' = never), field count, field, amount, ...
--       then per conversation: its state ('' = unresolved: delete)
--
-- Returns {'ok'}; {'watermark', current} when another worker applied this partition
-- since the caller read it; {'duplicate', key} when a dedup mark appeared meanwhile.
-- Either conflict means: nothing written, read again and recompute.

local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then
  return {'watermark', current}
end

local marks, buckets, conversations = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for i = 2, marks + 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {'duplicate', KEYS[i]}
  end
end
for i = 2, marks + 1 do
  redis.call('SET', KEYS[i], '1', 'PX', ARGV[7])
end

local key = marks + 1
local arg = 9
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
    redis.call('SET', KEYS[key], ARGV[arg], 'PX', ARGV[8])
  end
  arg = arg + 1
end

redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {'ok'}
