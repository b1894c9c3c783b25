-- Records one session of the session registry ("your devices"), merged into the record
-- kept for its sid by the rule every store applies (jwe_session_core's
-- `SessionRecord::absorb`): the earliest start, the latest renewal and `until`, the newer
-- binding, and a label or network hint only when this write carries one. Atomic: both keys
-- share the prefix's hash slot.
--
-- KEYS: the subject's index (a sorted set of sids scored by `until`), the session's record
-- (a hash).
-- ARGV: sid, sub, started_us, renewed, bound, until, label ('' for none), network ('' for
-- none).
-- Returns 1, or an error (writing nothing) for a record that belongs to another subject
-- or a key of another type.
for _, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= (key == KEYS[1] and 'zset' or 'hash') then
    return redis.error_reply('ERR jwe-session: ' .. key .. ' holds a ' .. t .. ', not a session record')
  end
end
local started, renewed, untl = ARGV[3], ARGV[4], ARGV[6]
if not (tonumber(started) and tonumber(renewed) and tonumber(untl)) or tonumber(untl) > 253402300799 then
  return redis.error_reply('ERR jwe-session: session record for ' .. KEYS[2] .. ' is out of range')
end
local old = redis.call('HMGET', KEYS[2], 'sub', 'started_us', 'renewed', 'until')
if old[1] then
  if old[1] ~= ARGV[2] then
    return redis.error_reply('ERR jwe-session: ' .. KEYS[2] .. ' is a session of another subject')
  end
  if tonumber(old[2]) and tonumber(old[2]) < tonumber(started) then started = old[2] end
  if tonumber(old[3]) and tonumber(old[3]) > tonumber(renewed) then renewed = old[3] end
  if tonumber(old[4]) and tonumber(old[4]) > tonumber(untl) then untl = old[4] end
end
redis.call('HSET', KEYS[2], 'sid', ARGV[1], 'sub', ARGV[2], 'started_us', started,
  'renewed', renewed, 'bound', ARGV[5], 'until', untl)
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'label', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'network', ARGV[8]) end
redis.call('EXPIREAT', KEYS[2], untl)
-- The index forgets what is over, and lives as long as its longest-lived session.
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], untl, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], last[2])
return 1
