#!lua flags=allow-oom
-- KEYS: record. ARGV: field/value pairs, written only if the record exists.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
