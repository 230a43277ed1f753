-- Dedup marks, grouped by the time they were written (roi_metrics.state.keys): the prelude
-- of seen.lua and apply.lua.
--
-- The marks written in the bucket that starts at S (worker's clock, seconds; a bucket lasts
-- one dedup horizon and expires a horizon after its end, so a lookup reads at most two)
-- live in hashes roi:{ch}:s:S:G:I, a field per mark (its 16-byte digest): generation G of
-- the bucket has a number of shards, and I is the digest's shard among them. Hashes of at
-- most 128 fields are listpacks (Redis's default hash-max-listpack-entries), about 20 bytes
-- a mark, so a generation holds PER_SHARD marks a shard on average before the next one
-- (GROWTH times more shards) opens. A bucket opens with enough shards for the one before
-- (FIRST shards when there is none: a new channel, or one silent for two horizons).
--
-- The directory roi:{ch}:sd: field S = "<expire-at> <shards of generation 1> ..."; field
-- "S:c" = marks written in its last generation; field "w" = a token the last apply that
-- wrote marks left (a new one each time, so a read can tell whether any was written since);
-- field "v2" = until when marks of the previous layout (a key each, roi:{ch}:s:<digest>,
-- with its own TTL) may still exist (0: none; no field yet: unknown, so they are looked
-- up). roi:{ch}:sx:S:G: a bitmap of the generation's hashes created (their expiry is set
-- once).

local PER_SHARD, GROWTH, FIRST = 64, 16, 16

-- The digests of a concatenation of 16-byte ones, and the number each is sharded by.
local function split(digests)
  local list, numbers = {}, {}
  for i = 1, #digests / 16 do
    local digest = string.sub(digests, 16 * i - 15, 16 * i)
    local a, b, c = string.byte(digest, 1, 3)
    list[i], numbers[i] = digest, (a * 256 + b) * 256 + c
  end
  return list, numbers
end

-- Calls `command` (HMGET or HSET) once per key for its arguments, at most 1000 at a time;
-- `groups`: key -> arguments. Returns key -> the replies, in order.
local function per_key(command, groups)
  local replies = {}
  for key, args in pairs(groups) do
    local all = {}
    for first = 1, #args, 1000 do
      local reply = redis.call(command, key, unpack(args, first, math.min(first + 999, #args)))
      if type(reply) == 'table' then
        for _, value in ipairs(reply) do
          all[#all + 1] = value
        end
      end
    end
    replies[key] = all
  end
  return replies
end

-- The directory's buckets {start, expire_at, gens, count, live} (live: not expired at `now`),
-- its "v2" field, and whether marks of the previous layout must be looked up too.
local function mark_buckets(directory, now)
  local raw = redis.call('HGETALL', directory)
  local buckets, counts, legacy_until = {}, {}, nil
  for i = 1, #raw, 2 do
    local name, value = raw[i], raw[i + 1]
    if name == 'v2' then
      legacy_until = tonumber(value)
    elseif string.sub(name, -2) == ':c' then
      counts[string.sub(name, 1, -3)] = tonumber(value)
    elseif name ~= 'w' then  -- 'w': the last writer's token (mark_token)
      local numbers = {}
      for n in string.gmatch(value, '%d+') do
        numbers[#numbers + 1] = tonumber(n)
      end
      local expire_at = table.remove(numbers, 1)
      buckets[#buckets + 1] = {start = name, expire_at = expire_at, gens = numbers}
    end
  end
  for _, bucket in ipairs(buckets) do  -- a field written by hand counts as expired
    bucket.count = counts[bucket.start] or 0
    local whole = #bucket.gens > 0
    for _, shards in ipairs(bucket.gens) do
      whole = whole and shards >= 1
    end
    bucket.live = whole and bucket.expire_at ~= nil and bucket.expire_at > now
        and tonumber(bucket.start) ~= nil
  end
  return buckets, legacy_until, legacy_until == nil or legacy_until > now
end

-- The token the last apply that wrote the channel's marks left ('-' before any).
local function mark_token(directory)
  return redis.call('HGET', directory, 'w') or '-'
end

-- Looks the digests not found yet up in one generation's hashes (names begin with `base`):
-- a call per digest when they fall in different hashes anyway, else one HMGET per hash.
local function look_up(base, shards, list, numbers, found)
  if shards * 4 > #list then
    for i = 1, #list do
      if not found[i] and redis.call('HEXISTS', base .. numbers[i] % shards, list[i]) == 1 then
        found[i] = true
      end
    end
    return
  end
  local groups, names = {}, {}
  for i = 1, #list do
    if not found[i] then
      local key = base .. numbers[i] % shards
      if groups[key] == nil then
        groups[key], names[key] = {}, {}
      end
      local group = groups[key]
      group[#group + 1] = i
      names[key][#group] = list[i]
    end
  end
  for key, values in pairs(per_key('HMGET', names)) do
    for j, i in ipairs(groups[key]) do
      if values[j] then
        found[i] = true
      end
    end
  end
end

-- Which digests (from split) are marked: found[i] is true for the i-th.
local function marked(prefix, buckets, legacy, list, numbers)
  local found = {}
  for _, bucket in ipairs(buckets) do
    if bucket.live then
      for generation, shards in ipairs(bucket.gens) do
        look_up(prefix .. bucket.start .. ':' .. generation .. ':', shards, list, numbers, found)
      end
    end
  end
  if legacy then
    for i = 1, #list do
      if not found[i] and redis.call('EXISTS', prefix .. list[i]) == 1 then
        found[i] = true
      end
    end
  end
  return found
end
