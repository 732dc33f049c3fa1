-- One wrk scenario of bench/bench_serving.py: rotating GETs, votes or new answers, with an
-- optional session cookie and CSRF token, counting the answers by status class.
--   wrk -s scenario.lua URL -- MODE FILE [COOKIE] [CSRF_TOKEN]
-- MODE get:    FILE lists request paths, one a line, cycled (each wrk thread from its own offset).
-- MODE vote:   FILE lists post ids; POST /posts/<id>/vote (htmx) with value 1, then 0 the next
--              time the same thread meets the post, so every request changes a vote.
-- MODE answer: FILE lists thread ids; POST /t/<id>/answers with a body no other request sent.
-- MODE meili:  FILE lists queries; the community search page's own Meilisearch request
--              (kb/search.py SearchEngine.search as the search page calls it: 10 a page, crop +
--              highlight, facets, matchingStrategy frequency, English) sent straight to
--              Meilisearch at URL: wrk -s scenario.lua MEILI_URL -- meili FILE INDEX_UID KEY
-- At the end one line "BENCH_JSON {...}" carries requests, duration, socket errors, latency
-- percentiles (microseconds) and the status counts (503 with Retry-After apart: admission control
-- queued the request, then refused it; search and suggestion pages answered without Meilisearch
-- counted as degraded).
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

local mode, items, cookie, csrf, salt
local counter, sent = 0, 0
local voted = {}
s2xx, s3xx, s4xx, s5xx, s503_retry, degraded = 0, 0, 0, 0, 0, 0

function init(args)
  mode = args[1]
  items = {}
  for line in io.lines(args[2]) do
    if #line > 0 then items[#items + 1] = line end
  end
  if #items == 0 then error("no lines in " .. args[2]) end
  cookie, csrf = args[3], args[4]
  math.randomseed(os.time() * 1000 + (thread_number or 1))
  salt = os.time() .. "x" .. math.random(1000000)
  -- Threads start far apart so that two of them rarely send the same item at once.
  counter = ((thread_number or 1) - 1) * math.floor(#items / 2 + 1) % #items
end

local function json_string(text)
  return '"' .. text:gsub('\\', '\\\\'):gsub('"', '\\"') .. '"'
end

local highlighted = '["title_en","title_es","question_en","question_es"]'

local function meili_request(query)
  local body = '{"q":' .. json_string(query) .. ',"page":1,"hitsPerPage":10,' ..
    '"attributesToCrop":' .. highlighted .. ',"cropLength":30,"attributesToHighlight":' ..
    highlighted .. ',"highlightPreTag":"\\u0002","highlightPostTag":"\\u0003",' ..
    '"cropMarker":"…","matchingStrategy":"frequency",' ..
    '"facets":["kind","status","tags","forum","locale"],"locales":["eng"]}'
  -- args: INDEX_UID in the cookie's place, KEY in the token's
  return wrk.format("POST", "/indexes/" .. cookie .. "/search",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. csrf}, body)
end

local function headers()
  local h = {}
  if cookie and #cookie > 0 then h["Cookie"] = cookie end
  if csrf and #csrf > 0 then h["X-CSRF-Token"] = csrf end
  return h
end

function request()
  counter = counter % #items + 1
  local item = items[counter]
  if mode == "get" then
    return wrk.format("GET", item, headers())
  end
  if mode == "meili" then
    return meili_request(item)
  end
  local h = headers()
  h["Content-Type"] = "application/x-www-form-urlencoded"
  sent = sent + 1
  if mode == "vote" then
    local value = voted[item] and "0" or "1"
    voted[item] = not voted[item]
    h["HX-Request"] = "true"
    return wrk.format("POST", "/posts/" .. item .. "/vote", h, "value=" .. value)
  end
  -- The run's salt too: the same member posting the same text again within a day is held for
  -- moderation (moderation/filters.py), which a second run would otherwise measure.
  local body = "body=Benchmark+answer+" .. salt .. "-" .. (thread_number or 1) .. "-" .. sent ..
    "%3A+restart+the+phone+after+changing+the+APN%2C+then+check+the+signal+bars+again."
  return wrk.format("POST", "/t/" .. item .. "/answers", h, body)
end

function response(status, hdrs, body)
  if status >= 500 then
    if status == 503 and (hdrs["Retry-After"] or hdrs["retry-after"]) then
      s503_retry = s503_retry + 1
    else
      s5xx = s5xx + 1
    end
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 300 then s3xx = s3xx + 1
  else
    s2xx = s2xx + 1
    -- A search or suggestions page answered without Meilisearch (it timed out or the breaker
    -- is open) is a 200 that did not do its job.
    if body and (body:find("reduced mode right now", 1, true) or
                 body:find("Suggestions may be incomplete", 1, true)) then
      degraded = degraded + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = {s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, s503_retry = 0, degraded = 0}
  for _, t in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + (t:get(name) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"s2xx":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d,"s503_retry":%d,"degraded":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx, totals.s503_retry,
    totals.degraded))
end
