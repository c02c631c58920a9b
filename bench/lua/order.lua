-- POST /orders, one line of one unit of a product from `products` (written by the bench
-- above this text), each request with an Idempotency-Key no other request of any run
-- uses: the run tag (args[1]), the thread and a counter.
local counter = 0
local prefix = ""

function init(args)
  prefix = args[1] .. "-" .. (thread_index or 1) .. "-"
end

function request()
  counter = counter + 1
  local product = products[(counter + (thread_index or 1) * 7) % #products + 1]
  local body = '{"items":[{"product_id":"' .. product .. '","quantity":1}]}'
  -- wrk.format takes these headers instead of wrk.headers: copy those (the token) in.
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  headers["Idempotency-Key"] = "bench-" .. prefix .. counter
  return wrk.format("POST", "/orders", headers, body)
end
