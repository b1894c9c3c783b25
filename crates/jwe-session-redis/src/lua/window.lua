-- Raises the stored window (ms) to this instance's, never lowers it. KEYS: window.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
if mine > cur then redis.call('SET', KEYS[1], ARGV[1]) return mine end
return cur
