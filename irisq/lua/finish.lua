#!lua flags=allow-oom
-- KEYS: record, queued index, running index, events. ARGV: job id, ttl, field/value pairs.
-- A job that is already final keeps its first outcome.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
for _, final in ipairs($FINAL_STATUSES) do
  if status == final then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HDEL', KEYS[1], 'task')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local owner = redis.call('HGET', KEYS[1], 'owner')
release_in_flight(owner, ARGV[1])
local stored = redis.call('HGET', KEYS[1], 'stored_bytes')
if stored then set_stored(owner, ARGV[1], tonumber(stored)) end
redis.call('EXPIRE', KEYS[4], ARGV[2])
schedule_callback(KEYS[1], ARGV[1])
announce(KEYS[1], ARGV[1])
return 1
