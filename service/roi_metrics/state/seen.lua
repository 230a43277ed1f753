-- Which dedup marks exist, as one string of '0' and '1' (one character per mark).
-- KEYS[1]: any key of the channel (declares the hash slot); ARGV[1]: the key prefix;
-- ARGV[2]: the marks' 16-byte digests, concatenated.
local prefix, digests = ARGV[1], ARGV[2]
local found = {}
for i = 1, #digests, 16 do
  found[#found + 1] = redis.call('EXISTS', prefix .. string.sub(digests, i, i + 15))
end
return table.concat(found)
