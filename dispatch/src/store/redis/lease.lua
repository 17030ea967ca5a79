-- The region's lease: one instance at a time appends to the log.
-- KEYS: 1 lease, 2 last sequence number. ARGV: 1 operation, 2 lease value, 3 ttl in ms.
-- acquire -> {'acquired', head} | {'held', holder value} ; renew / release -> 1 | 0
local op = ARGV[1]
if op == 'acquire' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then
    return { 'acquired', redis.call('GET', KEYS[2]) or '0' }
  end
  return { 'held', redis.call('GET', KEYS[1]) or '' }
elseif op == 'renew' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
elseif op == 'release' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
return redis.error_reply('ERR unknown lease operation ' .. tostring(op))
