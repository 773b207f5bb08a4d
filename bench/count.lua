-- bench/count.lua — makes wrk stop after exactly N responses.
-- Usage: wrk -t1 -cC -d600s -s bench/count.lua URL -- N
-- Use one thread (-t1): each wrk thread has its own Lua state, and the first
-- thread to reach N ends the whole run. wrk's main thread sleeps for the full
-- -d duration even when every thread has stopped, so the script also sends
-- SIGINT to its own process (Linux delivers it to the main thread, whose
-- handler ends the sleep; wrk then prints its usual summary).
local ffi = require("ffi")
ffi.cdef [[
int kill(int pid, int sig);
int getpid(void);
]]

local limit, seen = 0, 0

function init(args)
   limit = tonumber(args[1]) or 0
end

function response(status, headers, body)
   seen = seen + 1
   if seen == limit then
      wrk.thread:stop()
      ffi.C.kill(ffi.C.getpid(), 2)
   end
end
