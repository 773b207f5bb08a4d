-- bench/login.lua — wrk script for the identity benchmark's logins: every
-- request is a POST /api/v1/session with a <login> document, rotating over
-- the demo users named after the password file.
-- Usage: wrk … -s bench/login.lua URL -- PASSWORD_FILE USER...
-- Only correct passwords are ever sent (a wrong one counts towards the
-- account's throttle). Each wrk thread starts at a different user. Any answer
-- other than 200 is counted by wrk as "Non-2xx or 3xx responses"; the first
-- few are also printed with their status, so a refusal is never silent.
local requests = {}
local next_req = 1
local bad = 0

local function read_password(path)
   local f = assert(io.open(path, "r"), "cannot read " .. tostring(path))
   local pw = f:read("*l")
   f:close()
   assert(pw and #pw > 0, "empty password in " .. path)
   return pw
end

local function xml_escape(s)
   return (s:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"))
end

local threads_made = 0
function setup(thread)
   -- a global of that thread's Lua state, read in init()
   thread:set("thread_no", threads_made)
   threads_made = threads_made + 1
end

function init(args)
   local pw = xml_escape(read_password(args[1]))
   local headers = { ["Content-Type"] = "application/xml" }
   for i = 2, #args do
      local body = '<login xmlns="urn:itpm:1"><username>' .. xml_escape(args[i]) ..
         '</username><password>' .. pw .. '</password></login>'
      requests[#requests + 1] = wrk.format("POST", "/api/v1/session", headers, body)
   end
   assert(#requests > 0, "no users given")
   next_req = ((thread_no or 0) * 3) % #requests + 1
end

function request()
   local r = requests[next_req]
   next_req = next_req % #requests + 1
   return r
end

function response(status, headers, body)
   if status ~= 200 then
      bad = bad + 1
      if bad <= 3 then
         io.stderr:write("login answered " .. status .. ": " .. (body or ""):sub(1, 200) .. "\n")
      end
   end
end
