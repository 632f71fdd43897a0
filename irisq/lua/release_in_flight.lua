-- Takes `job_id` out of its owner's in-flight set (and its rows out of the sum), if it is
-- still there. `owner` comes from the job's record.
local function release_in_flight(owner, job_id)
  if not owner or owner == '' then return end
  local inflight = $OWNER_PREFIX .. owner .. ':inflight'
  local rows = redis.call('ZSCORE', inflight, job_id)
  if rows then
    redis.call('ZREM', inflight, job_id)
    redis.call('HINCRBY', $OWNER_PREFIX .. owner .. ':usage', 'rows', -tonumber(rows))
  end
end
