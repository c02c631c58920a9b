-- GET each prepared `requests_once` row ({path, request id, credential}, written by the bench
-- above this text) at most once: a credential is good for one request only. Thread n of N
-- takes rows n, n+N, ...; when a thread has used all of its rows it starts over, and the
-- service refuses the repeats (401), which the report counts as errors.
local prepared = {}
local position = 1

function init(args)
  local count = tonumber(args[1]) or 1
  local index = thread_index or 1
  for i = index, #requests_once, count do
    local row = requests_once[i]
    prepared[#prepared + 1] = wrk.format(
      "GET", row[1], {["X-Request-ID"] = row[2], ["X-Gateway-Credential"] = row[3]}, nil
    )
  end
end

function request()
  local request = prepared[position]
  position = position % #prepared + 1
  return request
end
