-- KEYS: none. ARGV: owner, job id, bytes.
return set_stored(ARGV[1], ARGV[2], tonumber(ARGV[3]))
