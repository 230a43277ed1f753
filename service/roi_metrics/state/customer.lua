-- Records that the customer agent joined one fact (CONTRACT.md §9), if the customer's state
-- is still the version it was read at (another agent instance, after a rebalance, may have
-- moved it on: then nothing is written, read again).
-- KEYS[1]: the customer's hash (what is kept of it 's', its version 'v'),
--   KEYS[2]: the sorted set of the facts it joined (fact id -> seconds), one slot
-- ARGV[1]: the fact id, ARGV[2]: the version read ('' = none), ARGV[3]: what is kept of the
--   customer after the fact (JSON), ARGV[4]: now (seconds), ARGV[5]: how long the
--   state and the fact ids are kept (seconds)
-- Returns {'ok'}, {'seen'} (this fact was joined already: nothing written) or {'conflict'}.
local version = redis.call('HGET', KEYS[1], 'v') or ''
if version ~= ARGV[2] then
  return {'conflict'}
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {'seen'}
end
local now, keep = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 's', ARGV[3])
redis.call('HSET', KEYS[1], 'v', (tonumber(version) or 0) + 1)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
redis.call('EXPIRE', KEYS[1], keep)
redis.call('EXPIRE', KEYS[2], keep)
return {'ok'}
