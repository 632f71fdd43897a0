#!lua flags=allow-oom
-- KEYS: record, queued index, running index, events. ARGV: job id. Removes the record and
-- what counts it anywhere (indexes, its owner's jobs in flight, stored bytes and kept jobs,
-- a callback due), then announces the id so that whoever waits on it finds it gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
release_in_flight(owner, ARGV[1])
set_stored(owner, ARGV[1], 0)
if owner and owner ~= '' then redis.call('ZREM', $OWNER_PREFIX .. owner .. ':jobs', ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', $ALL_JOBS_INDEX, ARGV[1])
redis.call('ZREM', $CALLBACKS_DUE, ARGV[1])
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('PUBLISH', $DONE_CHANNEL, ARGV[1])
return 1
