-- Records that `job_id`'s files now take `bytes` (0: deleted) in its owner's usage.
local function set_stored(owner, job_id, bytes)
  if not owner or owner == '' then return 0 end
  local files = $OWNER_PREFIX .. owner .. ':files'
  local before = tonumber(redis.call('ZSCORE', files, job_id) or '0')
  if bytes > 0 then
    redis.call('ZADD', files, bytes, job_id)
  else
    redis.call('ZREM', files, job_id)
  end
  redis.call('HINCRBY', $OWNER_PREFIX .. owner .. ':usage', 'bytes', bytes - before)
  return bytes - before
end
