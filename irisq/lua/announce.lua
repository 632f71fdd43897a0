-- Announces a job's end on DONE_CHANNEL: its whole record as a JSON array of field/value
-- pairs, so a waiting request needs no read of its own, or only its id when the record is
-- large (a 10,000-row result), which a waiting request then reads.
local function announce(key, job_id)
  local record = redis.call('HGETALL', key)
  local size = 0
  for i = 2, #record, 2 do size = size + #record[i] end
  if size <= $ANNOUNCED_RECORD_MAX_BYTES then
    redis.call('PUBLISH', $DONE_CHANNEL, cjson.encode(record))
  else
    redis.call('PUBLISH', $DONE_CHANNEL, job_id)
  end
end
