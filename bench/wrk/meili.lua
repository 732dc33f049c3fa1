-- wrk -s meili.lua MEILI_URL -- INDEX_UID KEY QUERIES_FILE
-- The community search page's own Meilisearch request (kb/search.py SearchEngine.search as the
-- search page calls it: 10 a page, crop + highlight, facets, matchingStrategy frequency, English),
-- sent straight to Meilisearch, cycling through the same queries as the page scenario.
local queries = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

local function json_string(text)
  return '"' .. text:gsub('\\', '\\\\'):gsub('"', '\\"') .. '"'
end

function init(args)
  local uid, key = args[1], args[2]
  for line in io.lines(args[3]) do
    if #line > 0 then queries[#queries + 1] = line end
  end
  counter = ((thread_number or 1) - 1) * 7 % #queries
  wrk.method = "POST"
  wrk.path = "/indexes/" .. uid .. "/search"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

local hl = '["title_en","title_es","question_en","question_es"]'

function request()
  counter = counter % #queries + 1
  local body = '{"q":' .. json_string(queries[counter]) .. ',"page":1,"hitsPerPage":10,' ..
    '"attributesToCrop":' .. hl .. ',"cropLength":30,"attributesToHighlight":' .. hl ..
    ',"highlightPreTag":"\\u0002","highlightPostTag":"\\u0003","cropMarker":"…",' ..
    '"matchingStrategy":"frequency","facets":["kind","status","tags","forum","locale"],' ..
    '"locales":["eng"]}'
  return wrk.format(nil, nil, nil, body)
end

s2xx, s3xx, s4xx, s5xx, s503_retry = 0, 0, 0, 0, 0

function response(status, hdrs, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  else s2xx = s2xx + 1 end
end

function done(summary, latency, requests)
  local totals = {s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, s503_retry = 0}
  for _, t in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + (t:get(name) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"s2xx":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d,"s503_retry":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx, totals.s503_retry))
end
