-- Appends batches to a region's log, atomically, only for the holder of the region's lease
-- and only in sequence (so a deposed holder can never extend the log), after checking that no
-- crew is claimed while it holds another ticket and no ticket gets a second crew.
--
-- KEYS: 1 log (stream), 2 last sequence number, 3 lease, 4 idempotency (hash),
--       5 crew tokens (hash), 6 crew -> ticket (hash), 7 ticket -> crew (hash),
--       8.. the tickets' own keys (hashes and timelines) that the batches name by index.
-- ARGV: 1 lease value, 2 sequence number of the first batch, 3 number of batches, then per
--       batch: payload, idempotency key ('' for none), idempotency record, crew token
--       field ('' for none), crew id, revoked token count, revoked token fields...,
--       claim count, claims (op, crew, ticket)...,
--       timeline count, timeline key indexes..., hash count, per hash (key index, field
--       count, field, value...)
-- A timeline gets the id of the log entry that holds its ticket's events: they are written
-- once, in the log.
-- Errors (nothing written): NOTLEADER, OUTOFSEQ, CLAIM.
-- The same call sent again by the lease holder once it has been applied (a client that
-- lost the answer and retried on a new connection, as the cluster client does) answers as
-- the first did: the log then ends with this call's batches, word for word. Only the holder
-- gets that answer: another instance whose engine decided the same batches (two instances
-- racing for one due deadline do) is refused, as it must be.

if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER this instance does not hold the region lease')
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = tonumber(ARGV[2])

-- Parse every batch first.
local batches = {}
local at = 4
for _ = 1, tonumber(ARGV[3]) do
  local b = { payload = ARGV[at], idem_key = ARGV[at + 1], idem = ARGV[at + 2],
              token = ARGV[at + 3], token_crew = ARGV[at + 4], revoked = {}, claims = {},
              timelines = {}, updates = {} }
  at = at + 5
  for _ = 1, tonumber(ARGV[at]) do
    table.insert(b.revoked, ARGV[at + 1])
    at = at + 1
  end
  at = at + 1
  for _ = 1, tonumber(ARGV[at]) do
    table.insert(b.claims, { ARGV[at + 1], ARGV[at + 2], ARGV[at + 3] })
    at = at + 3
  end
  at = at + 1
  for _ = 1, tonumber(ARGV[at]) do
    table.insert(b.timelines, tonumber(ARGV[at + 1]))
    at = at + 1
  end
  at = at + 1
  for _ = 1, tonumber(ARGV[at]) do
    local key, n = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
    local values = {}
    for i = 1, 2 * n do values[i] = ARGV[at + 2 + i] end
    table.insert(b.updates, { key, values })
    at = at + 2 + 2 * n
  end
  at = at + 1
  table.insert(batches, b)
end

local function payload_of(entry)
  local fields = entry[2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'batch' then return fields[i + 1] end
  end
  return nil
end
if first ~= last + 1 and #batches > 0 and first + #batches - 1 == last then
  -- Newest first: the log's last entry is this call's last batch.
  local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', #batches)
  local applied = #tail == #batches
  for i = 1, #tail do
    if payload_of(tail[i]) ~= batches[#batches - i + 1].payload then applied = false end
  end
  if applied then return last end
end
if first ~= last + 1 then
  return redis.error_reply('OUTOFSEQ the log ends at ' .. last .. ', the batch is ' .. first)
end

-- Check the claims in order, over what the earlier ones change (false: no entry).
local crew_job, ticket_crew = {}, {}
local function job_of(crew)
  local v = crew_job[crew]
  if v == nil then v = redis.call('HGET', KEYS[6], crew) end
  return v
end
local function crew_of(ticket)
  local v = ticket_crew[ticket]
  if v == nil then v = redis.call('HGET', KEYS[7], ticket) end
  return v
end
for _, b in ipairs(batches) do
  for _, c in ipairs(b.claims) do
    local op, crew, ticket = c[1], c[2], c[3]
    if op == 'claim' then
      local held = job_of(crew)
      if held and held ~= ticket then
        return redis.error_reply('CLAIM crew ' .. crew .. ' holds ticket ' .. held)
      end
      local other = crew_of(ticket)
      if other and other ~= crew then
        return redis.error_reply('CLAIM ticket ' .. ticket .. ' has crew ' .. other)
      end
      crew_job[crew] = ticket
      ticket_crew[ticket] = crew
    elseif job_of(crew) == ticket then
      crew_job[crew] = false
      ticket_crew[ticket] = false
    end
  end
end

-- Write.
local seq = last
for _, b in ipairs(batches) do
  seq = seq + 1
  local id = redis.call('XADD', KEYS[1], '*', 'seq', seq, 'batch', b.payload)
  if b.idem_key ~= '' then redis.call('HSET', KEYS[4], b.idem_key, b.idem) end
  if b.token ~= '' then redis.call('HSET', KEYS[5], b.token, b.token_crew) end
  for _, t in ipairs(b.revoked) do redis.call('HDEL', KEYS[5], t) end
  for _, t in ipairs(b.timelines) do redis.call('RPUSH', KEYS[t], id) end
  for _, u in ipairs(b.updates) do redis.call('HSET', KEYS[u[1]], unpack(u[2])) end
end
for crew, ticket in pairs(crew_job) do
  if ticket then redis.call('HSET', KEYS[6], crew, ticket) else redis.call('HDEL', KEYS[6], crew) end
end
for ticket, crew in pairs(ticket_crew) do
  if crew then redis.call('HSET', KEYS[7], ticket, crew) else redis.call('HDEL', KEYS[7], ticket) end
end
redis.call('SET', KEYS[2], seq)
return seq
