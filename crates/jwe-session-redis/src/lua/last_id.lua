-- The id of the last entry ever added to the log (`0-0` if there is no log): Redis keeps
-- it through trimming, so it only moves forward, unless Redis went back in time. KEYS: log.
if redis.call('EXISTS', KEYS[1]) == 0 then return '0-0' end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return info[i + 1] end
end
return '0-0'
