-- KEYS: the owner's job index. ARGV: job ids. Removes the records (and progress events) of
-- those jobs that have ended, and the index entries of those whose records are gone.
-- Returns the ids that left.
local final = {}
for _, status in ipairs($FINAL_STATUSES) do final[status] = true end
local gone = {}
for i = 1, #ARGV do
  local id = ARGV[i]
  local key = $KEY_PREFIX .. id
  local status = redis.call('HGET', key, 'status')
  if not status or final[status] then
    if status then redis.call('DEL', key, $EVENTS_PREFIX .. id) end
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', $ALL_JOBS_INDEX, id)
    table.insert(gone, id)
  end
end
return gone
