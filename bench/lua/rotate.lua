-- GET or POST over the prepared `targets` ({path, body} pairs written by the bench above
-- this text), each thread starting at its own offset so two threads do not move in step.
local requests = {}
local position = 1

function init(args)
  for i, target in ipairs(targets) do
    requests[i] = wrk.format(method, target[1], nil, target[2])
  end
  position = ((thread_index or 1) * 7919) % #requests + 1
end

function request()
  local prepared = requests[position]
  position = position % #requests + 1
  return prepared
end
