-- Replay pre-signed OpenKMS RPC requests, each exactly once (bench/presign.py writes the file).
--
--   wrk -t T -c C -d D --latency -s bench/replay.lua http://127.0.0.1:PORT/ -- BODIES_FILE T
--
-- BODIES_FILE holds one form-encoded POST body per line. With T threads, thread k (0-based, numbered in
-- setup) sends lines k, k+T, k+2T, ... so no request goes out twice. A thread that runs out of requests
-- stops (a replay would be refused with SignatureNonceUsed); done() reports it as "exhausted", which
-- makes the run invalid because wrk still divides by the full duration.
--
-- With a third argument "raw", BODIES_FILE instead holds one complete HTTP request (request line,
-- headers, body: the instance API's protobuf, bench/instance_api.py), sent again and again: that API
-- has no nonce, only a date window, so one signed request stays valid for a whole run.
--
-- done() prints one line, "BENCH-RESULT {json}", with the counters the runner needs: non-200 responses
-- by status, exhausted threads, requests loaded and sent, and precise latency percentiles (microseconds).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s replay.lua URL -- BODIES_FILE THREADS")
   end
   local stride = tonumber(args[2]) or 1 -- the number of wrk threads (-t)
   loaded = 0
   sent = 0
   exhausted = 0
   non200 = 0
   statuses = {}
   if args[3] == "raw" then
      local file = assert(io.open(path, "rb"))
      raw_request = file:read("*a")
      file:close()
      return
   end
   local host = wrk.headers["Host"] or (wrk.host .. ":" .. tostring(wrk.port))
   local head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. host
      .. "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
   requests = {}
   local n, line_no = 0, 0
   local mine = id or 0
   for line in io.lines(path) do
      if line ~= "" then
         if line_no % stride == mine then
            n = n + 1
            requests[n] = head .. #line .. "\r\n\r\n" .. line
         end
         line_no = line_no + 1
      end
   end
   loaded = n
   sent = 0
   exhausted = 0
   non200 = 0
   statuses = {}
end

function request()
   sent = sent + 1
   if raw_request then
      return raw_request
   end
   local r = requests[sent]
   if r == nil then
      sent = sent - 1
      exhausted = 1
      wrk.thread:stop()
      return ""
   end
   requests[sent] = false -- let the string be collected
   return r
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

local function status_text(t)
   local parts = {}
   for code, count in pairs(t) do
      table.insert(parts, string.format('"%d":%d', code, count))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, reqs)
   local total_non200, total_exhausted, total_sent, total_loaded = 0, 0, 0, 0
   local merged = {}
   for _, t in ipairs(threads) do
      total_non200 = total_non200 + (t:get("non200") or 0)
      total_exhausted = total_exhausted + (t:get("exhausted") or 0)
      -- the first request() of thread 0 is wrk's own syntax check and never goes out
      total_sent = total_sent + (t:get("sent") or 0)
      total_loaded = total_loaded + (t:get("loaded") or 0)
      local s = t:get("statuses")
      if s then
         for code, count in pairs(s) do
            merged[code] = (merged[code] or 0) + count
         end
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"requests":%d,"duration_us":%d,"non200":%d,"statuses":%s,"exhausted":%d,'
         .. '"sent":%d,"loaded":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
         .. '"status_errors":%d,"timeouts":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,'
         .. '"max_us":%.1f,"mean_us":%.1f}\n',
      summary.requests, summary.duration, total_non200, status_text(merged), total_exhausted,
      total_sent, total_loaded, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
