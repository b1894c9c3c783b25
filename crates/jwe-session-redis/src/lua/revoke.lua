-- Records a batch of revocations: merges each into its point key (the later cut-off and
-- the later expiry win), indexes subject and global cut-offs, and appends what changed to
-- the log in one entry, trimming the log by time. Atomic: all keys share one hash slot,
-- and a batch it refuses (a point key of another type, a moment out of range) is refused
-- before anything is written.
--
-- KEYS: log, cut-offs index, window, then one point key per revocation.
-- ARGV: this writer's window in ms, then per revocation: kind (`s` session, `c` cut-off),
-- value (`1`, or the cut-off in µs), expiry (Unix s), log encoding (for a session, its
-- sid: the script writes `s <until> <made> <sid>` with `made` from Redis's own clock, so a
-- writer whose clock is behind cannot shorten the window readers keep it for).
-- Returns how many point keys changed and the id of the log entry it added (`""` if none).
local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_ms = now_s * 1000 + math.floor(tonumber(now[2]) / 1000)
local n = (#ARGV - 1) / 4
-- Everything is checked before anything is written: Redis does not roll a script back,
-- so an error half-way would leave point keys set without their log entry.
for i = 1, n do
  local key = KEYS[3 + i]
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= 'string' then
    return redis.error_reply('ERR jwe-session: ' .. key .. ' holds a ' .. t .. ', not a revocation')
  end
  local exat = tonumber(ARGV[4 * i])
  if (not exat) or exat > 253402300799 or (not tonumber(ARGV[4 * i - 1])) then
    return redis.error_reply('ERR jwe-session: revocation for ' .. key .. ' is out of range')
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_s)
local changed = {}
for i = 1, n do
  local key = KEYS[3 + i]
  local kind = ARGV[4 * i - 2]
  local v = tonumber(ARGV[4 * i - 1])
  local exat = tonumber(ARGV[4 * i])
  local enc = ARGV[4 * i + 1]
  if exat > now_s then
    local cur = redis.call('GET', key)
    local cur_exat = -2
    if cur then cur_exat = redis.call('EXPIRETIME', key) end
    local c = tonumber(cur)
    local new_v = v
    if c and c > new_v then new_v = c end
    local new_exat = exat
    if cur_exat > new_exat then new_exat = cur_exat end
    if (not c) or new_v ~= c or new_exat ~= cur_exat then
      redis.call('SET', key, string.format('%d', new_v), 'EXAT', new_exat)
      if kind == 'c' then redis.call('ZADD', KEYS[2], new_exat, key) end
      if kind == 's' then enc = string.format('s %d %d %s', exat, now_s, enc) end
      changed[#changed + 1] = 'r'
      changed[#changed + 1] = enc
    end
  end
end
if #changed > 0 then
  local window = tonumber(redis.call('GET', KEYS[3]) or '0')
  local mine = tonumber(ARGV[1])
  if mine > window then window = mine end
  local minid = now_ms - window - 60000
  if minid < 0 then minid = 0 end
  local id = redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', unpack(changed))
  return {#changed / 2, id}
end
return {0, ''}
