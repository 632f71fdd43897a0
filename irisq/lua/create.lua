#!lua
-- KEYS: the queue to push a task to, or none. ARGV: the most tasks that queue may hold
-- (unused without a queue), the records' time to live, the task's message, then for each
-- job: its id, when it was queued (epoch seconds), its rows and stored bytes (counted
-- against its owner's quotas), its owner ('' for none), its record's number of fields,
-- then the record's field/value pairs.
-- Records every job and then pushes the task, all or nothing: one round trip where a
-- depth check, then a MULTI, took two. Returns -1, or the queue's depth when the queue was
-- full (then nothing was written). Not allowed when Redis is full: no job is accepted then.
if #KEYS > 0 then
  local depth = redis.call('LLEN', KEYS[1])
  if depth >= tonumber(ARGV[1]) then return depth end
end
local i = 4
while i <= #ARGV do
  local job_id, epoch, rows, bytes, owner = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local last = i + 5 + 2 * tonumber(ARGV[i + 5])
  local record = $KEY_PREFIX .. job_id
  redis.call('HSET', record, unpack(ARGV, i + 6, last))
  redis.call('EXPIRE', record, ARGV[2])
  redis.call('ZADD', $QUEUED_INDEX, epoch, job_id)
  redis.call('ZADD', $ALL_JOBS_INDEX, epoch, job_id)
  if owner ~= '' then
    local prefix = $OWNER_PREFIX .. owner
    redis.call('ZADD', prefix .. ':inflight', rows, job_id)
    redis.call('HINCRBY', prefix .. ':usage', 'rows', rows)
    if tonumber(bytes) > 0 then
      redis.call('ZADD', prefix .. ':files', bytes, job_id)
      redis.call('HINCRBY', prefix .. ':usage', 'bytes', bytes)
    end
    redis.call('ZADD', prefix .. ':jobs', epoch, job_id)
    redis.call('SADD', $OWNERS, owner)
  end
  i = last + 1
end
if #KEYS > 0 then redis.call('LPUSH', KEYS[1], ARGV[3]) end
return -1
