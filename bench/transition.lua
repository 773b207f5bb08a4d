-- bench/transition.lua — wrk script for the lifecycle benchmark's
-- transitions: every request is a transition of one project that no other
-- request in flight touches, with the version it must match.
-- Usage: wrk -tT … -s bench/transition.lua URL -- MODE THREADS CODES_FILE
--   MODE itpmd:    POST /api/v1/projects/{code}/transitions with
--                  <transition action="defer"/> and If-Match: "<version>";
--                  the new version is read from the answer's ETag.
--   MODE baseline: POST /bench/tx/{code} (bench/baseline.c).
--   THREADS: wrk's -t; CODES_FILE: "code version" lines. Thread k takes the
--   lines k+1, k+1+THREADS, …; it needs more of them than its connections.
-- Each request carries X-Request-Id: tr-<slot>-<n>, which nginx echoes even on
-- an error, so an answer finds its project whatever order they come back in.
-- A project whose list year reached 2100 (defer adds one each time, the
-- column stops at 2100) or that got any answer but 200 is not sent again;
-- the first few non-200 answers are printed.
local slots = {}
local cursor = 0
local seq = 0
local mode = "itpmd"
local bad = 0

local threads_made = 0
function setup(thread)
   thread:set("thread_no", threads_made)
   threads_made = threads_made + 1
end

function init(args)
   mode = args[1] or "itpmd"
   local nthreads = tonumber(args[2]) or 1
   local f = assert(io.open(args[3], "r"), "cannot read " .. tostring(args[3]))
   local i = 0
   for line in f:lines() do
      local code, version = line:match("^(%S+)%s+(%d+)")
      if code then
         if i % nthreads == (thread_no or 0) then
            slots[#slots + 1] = { code = code, version = version, busy = false, dead = false }
         end
         i = i + 1
      end
   end
   f:close()
   assert(#slots > 0, "no projects for thread " .. tostring(thread_no))
end

local body = '<transition xmlns="urn:itpm:1" action="defer"/>'

function request()
   local n = #slots
   local pick
   for _ = 1, n do
      cursor = cursor % n + 1
      local s = slots[cursor]
      if not s.busy and not s.dead then
         pick = cursor
         break
      end
   end
   -- Nothing free (more connections than live projects): reuse one; its
   -- answer will be an error and count as one.
   pick = pick or (cursor % n + 1)
   local s = slots[pick]
   s.busy = true
   seq = seq + 1
   -- wrk.format takes these instead of wrk.headers (-H): carry them over.
   local headers = {}
   for k, v in pairs(wrk.headers) do headers[k] = v end
   headers["X-Request-Id"] = "tr-" .. pick .. "-" .. seq
   if mode == "baseline" then
      return wrk.format("POST", "/bench/tx/" .. s.code, headers, "")
   end
   headers["Content-Type"] = "application/xml"
   headers["If-Match"] = '"' .. s.version .. '"'
   return wrk.format("POST", "/api/v1/projects/" .. s.code .. "/transitions", headers, body)
end

function response(status, headers, resp_body)
   local rid = headers["X-Request-Id"] or headers["x-request-id"] or ""
   local s = slots[tonumber(rid:match("^tr%-(%d+)%-")) or 0]
   if s == nil then
      bad = bad + 1
      if bad <= 3 then
         io.stderr:write("transition: answer " .. status .. " without our request id\n")
      end
      return
   end
   s.busy = false
   if status == 200 then
      local etag = headers["ETag"] or headers["Etag"] or headers["etag"] or ""
      local v = etag:match("(%d+)")
      if v then s.version = v else s.dead = true end
      if mode == "itpmd" and (resp_body or ""):find("<listYear>2100</listYear>", 1, true) then
         s.dead = true
      end
   else
      s.dead = true
      bad = bad + 1
      if bad <= 3 then
         io.stderr:write("transition of " .. s.code .. " answered " .. status .. ": " ..
                         (resp_body or ""):sub(1, 300) .. "\n")
      end
   end
end
