-- wrk script: every request asks for the next 1,000-row JSON page of the
-- dataset by cursor, as a departmental system syncing it would; a walk that
-- reaches the last page starts again. The cursor is per wrk thread (its
-- connections take turns walking), which is the same work for the server.
-- One principal per client: a departmental system each (the query layer
-- bounds concurrent queries per principal).
local tokens = {}
for t in string.gmatch(os.getenv("CIVLINK_TOKENS"), "[^,]+") do tokens[#tokens + 1] = t end
local turn = 0
local path = os.getenv("CIVLINK_ROWS_PATH")
local cursor = nil
local bad = 0

request = function()
  local p = path .. "?limit=1000"
  if cursor then p = p .. "&cursor=" .. cursor end
  turn = turn + 1
  local token = tokens[(turn % #tokens) + 1]
  return wrk.format("GET", p, { ["Authorization"] = "Bearer " .. token })
end

response = function(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    cursor = nil
    return
  end
  cursor = string.match(body, '"next_cursor":"([0-9a-f]+)"')
end

done = function(summary, latency, requests)
  io.write(string.format("non-200: %d\n", summary.errors.status))
end
