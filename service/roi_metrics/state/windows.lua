-- Sums what the exporter needs of one channel's buckets, atomically and server-side.
-- KEYS[1]: the channel's cumulative hash, KEYS[2]: its closed-writes token, KEYS[3]: its
--   bucket-writes token (all in one slot)
-- ARGV[1]: the bucket key prefix, e.g. 'roi:{web}:b:'; ARGV[2]: the closed-writes token the
--   caller last saw ('' = none); ARGV[3]: the bucket-writes token the caller last saw, when its sums
--   are of the same buckets as this call's ('' = none); ARGV[4]: F, the number of counters;
--   ARGV[5..4+F]: their names;
-- then per window, 7 arguments: resolution name, bucket seconds, first hot bucket start,
--   hot bucket count, first closed bucket start, closed bucket count, '1' to sum the
--   closed buckets (they are summed anyway when the closed-writes token is not the caller's).
-- Returns {closed-writes token, bucket-writes token} when neither token moved (no bucket
--   was written since the caller's sums: they stand); else {closed-writes token ('0' =
--   none), bucket-writes token ('' = none),
--   cumulative hash (flat), then per window: its hot sum (F totals) and its closed sum (F
--   totals, or an empty array when not asked and still valid)}.
-- A bucket shared by windows (7d and 30d) is read once. Sums are exact for any values up to
-- 2^63 - 1 (what the apply script writes): Lua numbers are doubles, so a value of 14 digits
-- or more is split into its last 9 digits and the rest, each part summed on its own (both
-- stay far below 2^53) and the total written back as decimal digits; a total of short
-- values is returned as an integer. A value that is not a non-negative integer (only a hand
-- could write one: the apply script refuses to add to it) counts as 0, for this channel's
-- figures to stay readable and the others' too.
local prefix = ARGV[1]
local nfields = tonumber(ARGV[4])
local fields = {}
for f = 1, nfields do
  fields[f] = ARGV[4 + f]
end
local counter = redis.call('GET', KEYS[2]) or '0'
local stale = counter ~= ARGV[2]
local token = redis.call('GET', KEYS[3])
if token and token ~= '' and token == ARGV[3] and not stale then
  return {counter, token}
end
local cache = {}
local BILLION = 1000000000

-- Adds a stored value into low[f] and high[f], with value = high * 10^9 + low. Short values
-- (the usual case) take one tonumber; a missing bucket or field reads as false.
local function add(low, high, f, value)
  if not value or not string.match(value, '^%d+$') then
    return
  end
  if #value <= 13 then
    low[f] = low[f] + tonumber(value)
  elseif #value <= 19 then
    low[f] = low[f] + tonumber(string.sub(value, -9))
    high[f] = high[f] + tonumber(string.sub(value, 1, -10))
  end
end

local function sum(name, first, count, step)
  local low, high = {}, {}
  for f = 1, nfields do
    low[f], high[f] = 0, 0
  end
  for i = 0, count - 1 do
    local suffix = name .. ':' .. string.format('%d', first + i * step)
    local values = cache[suffix]
    if values == nil then
      values = redis.call('HMGET', prefix .. suffix, unpack(fields))
      cache[suffix] = values
    end
    for f = 1, nfields do
      add(low, high, f, values[f])
    end
  end
  local totals = {}
  for f = 1, nfields do
    if high[f] == 0 then
      totals[f] = low[f] -- below 2^53: an exact integer reply
    else
      local carry = math.floor(low[f] / BILLION)
      totals[f] = string.format('%d%09d', high[f] + carry, low[f] - carry * BILLION)
    end
  end
  return totals
end

local result = {counter, token or '', redis.call('HGETALL', KEYS[1])}
for arg = 5 + nfields, #ARGV, 7 do
  local name, step = ARGV[arg], tonumber(ARGV[arg + 1])
  result[#result + 1] = sum(name, tonumber(ARGV[arg + 2]), tonumber(ARGV[arg + 3]), step)
  if stale or ARGV[arg + 6] == '1' then
    result[#result + 1] = sum(name, tonumber(ARGV[arg + 4]), tonumber(ARGV[arg + 5]), step)
  else
    result[#result + 1] = {}
  end
end
return result
