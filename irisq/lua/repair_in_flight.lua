-- ARGV: the owner, then job ids in its in-flight set. Releases those whose records are
-- gone; returns how many.
local released = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', $KEY_PREFIX .. ARGV[i]) == 0 then
    release_in_flight(ARGV[1], ARGV[i])
    released = released + 1
  end
end
return released
