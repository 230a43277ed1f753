-- Sums the bucket hashes of one channel for several windows, server-side.
-- KEYS[1]: the channel's cumulative hash (declares the slot; every key read shares its tag)
-- ARGV[1]: the channel's bucket key prefix, e.g. 'roi:{web}:b:'
-- ARGV[2]: the number F of counters, then ARGV[3..2+F]: the counter (field) names
-- then per window: a count N, then N bucket key suffixes ('m:1772366400', ...)
-- Returns one array per window: the F totals, in the order of the field names.
-- Each bucket is read once (HMGET), even when windows share it (7d and 30d do).
-- Sums are Lua numbers (doubles): exact up to 2^53 micro-units (9 billion currency units)
-- per counter and window.
local prefix = ARGV[1]
local nfields = tonumber(ARGV[2])
local fields = {}
for f = 1, nfields do
  fields[f] = ARGV[2 + f]
end
local cache = {}
local result = {}
local arg = 3 + nfields
while arg <= #ARGV do
  local count = tonumber(ARGV[arg])
  local totals = {}
  for f = 1, nfields do
    totals[f] = 0
  end
  for i = 1, count do
    local suffix = ARGV[arg + i]
    local values = cache[suffix]
    if values == nil then
      values = redis.call('HMGET', prefix .. suffix, unpack(fields))
      for f = 1, nfields do
        values[f] = tonumber(values[f]) or 0 -- a missing bucket or field reads as false
      end
      cache[suffix] = values
    end
    for f = 1, nfields do
      totals[f] = totals[f] + values[f]
    end
  end
  local flat = {}
  for f = 1, nfields do
    flat[f] = string.format('%d', totals[f])
  end
  result[#result + 1] = flat
  arg = arg + count + 1
end
return result
