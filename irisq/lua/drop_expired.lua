-- KEYS: a job index. ARGV: job ids. Removes the entries whose records are gone; returns them.
local gone = {}
for i = 1, #ARGV do
  if redis.call('EXISTS', $KEY_PREFIX .. ARGV[i]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i])
    table.insert(gone, ARGV[i])
  end
end
return gone
