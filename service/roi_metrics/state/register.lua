-- Registers a channel unless the registry is full (CONTRACT.md §1 v2), atomically.
-- KEYS[1]: the registry set; ARGV[1]: the channel; ARGV[2]: max_channels.
-- Returns 1 when the channel is known (now or before), 0 when the registry is full.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 1
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
