#!lua flags=allow-oom
-- KEYS: record, queued index, running index. ARGV: job id, now (epoch), max attempts,
-- the error stored when giving up, now (ISO), then field/value pairs for a start.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'skipped' end
local status = redis.call('HGET', KEYS[1], 'status')
for _, final in ipairs($FINAL_STATUSES) do
  if status == final then return 'skipped' end
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
if attempts > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[4], 'finished_at', ARGV[5])
  redis.call('HDEL', KEYS[1], 'task')
  redis.call('ZREM', KEYS[3], ARGV[1])
  release_in_flight(redis.call('HGET', KEYS[1], 'owner'), ARGV[1])
  schedule_callback(KEYS[1], ARGV[1])
  announce(KEYS[1], ARGV[1])
  return 'gave_up'
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 'started'
