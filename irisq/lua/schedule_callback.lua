-- Schedules the delivery of a job's end to its callback_url, in the script that ends it: a
-- job can never end without its delivery being due (and due exactly once).
local function schedule_callback(key, job_id)
  if redis.call('HEXISTS', key, 'callback_url') == 0 then return end
  local now = redis.call('TIME')
  redis.call('ZADD', $CALLBACKS_DUE, now[1] + now[2] / 1000000, job_id)
  redis.call('HSET', key, 'callback', '{"state": "pending", "attempts": 0}')
end
