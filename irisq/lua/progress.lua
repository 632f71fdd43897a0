#!lua flags=allow-oom
-- KEYS: record, its events. ARGV: job id, then field/value pairs. Stores the progress, adds
-- it to the job's events (capped, expiring with the record) and announces the job id.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', $EVENTS_KEPT, '*', unpack(ARGV, 2))
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('PUBLISH', $PROGRESS_CHANNEL, ARGV[1])
return 1
