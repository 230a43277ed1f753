-- Which dedup marks exist, as one string of '0' and '1' (one character per mark), and the
-- token of the last apply that wrote the channel's marks (apply.lua skips its own lookups
-- when none has written since).
-- KEYS[1]: the channel's mark directory; ARGV[1]: the mark key prefix; ARGV[2]: the marks'
-- 16-byte digests, concatenated; ARGV[3]: now (the worker's clock, seconds).
local list, numbers = split(ARGV[2])
local buckets, _, legacy = mark_buckets(KEYS[1], tonumber(ARGV[3]))
local found, answer = marked(ARGV[1], buckets, legacy, list, numbers), {}
for i = 1, #list do
  answer[i] = found[i] and '1' or '0'
end
return {table.concat(answer), mark_token(KEYS[1])}
