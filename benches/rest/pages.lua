-- wrk script: every request asks for the next 1,000-row JSON page of the
-- dataset by cursor, as a departmental system syncing it would; a walk that
-- reaches the last page starts again. The cursor is per wrk thread (its
-- connections take turns walking), which is the same work for the server.
local token = os.getenv("CIVLINK_TOKEN")
local path = os.getenv("CIVLINK_ROWS_PATH")
local cursor = nil
local bad = 0

request = function()
  local p = path .. "?limit=1000"
  if cursor then p = p .. "&cursor=" .. cursor end
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
