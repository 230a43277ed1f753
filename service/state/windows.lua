-- Sums the bucket hashes of one channel for several windows, server-side.
-- KEYS[1]: the channel's cumulative hash (declares the slot; every key read shares its tag)
-- ARGV[1]: the channel's bucket key prefix, e.g. 'roi:{web}:b:'
-- ARGV[2..]: per window: a count N, then N bucket key suffixes ('m:1772366400', ...)
-- Returns one flat array per window: field, total, field, total, ...
-- Sums are Lua numbers (doubles): exact up to 2^53 micro-units (9 billion currency units)
-- per counter and window.
local prefix = ARGV[1]
local result = {}
local arg = 2
while arg <= #ARGV do
  local count = tonumber(ARGV[arg])
  local totals = {}
  for i = 1, count do
    local fields = redis.call('HGETALL', prefix .. ARGV[arg + i])
    for j = 1, #fields, 2 do
      totals[fields[j]] = (totals[fields[j]] or 0) + tonumber(fields[j + 1])
    end
  end
  local flat = {}
  for field, total in pairs(totals) do
    flat[#flat + 1] = field
    flat[#flat + 1] = string.format('%d', total)
  end
  result[#result + 1] = flat
  arg = arg + count + 1
end
return result
