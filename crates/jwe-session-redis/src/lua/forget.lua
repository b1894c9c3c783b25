-- Removes one session from the session registry.
--
-- KEYS: the subject's index (sorted set), the session's record (hash).
-- ARGV: sid, sub.
-- Returns 1 if a record of this subject was removed, 0 otherwise (a record of another
-- subject is left alone).
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'sub') == ARGV[2] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
