-- POST /products with a name no other request of any run uses: the run tag (args[1]),
-- the thread and a counter.
local counter = 0
local prefix = ""

function init(args)
  prefix = args[1] .. "-" .. (thread_index or 1) .. "-"
end

function request()
  counter = counter + 1
  local body = '{"name":"bench ' .. prefix .. counter ..
    '","price":19.99,"stock":3,"description":"written by make bench"}'
  return wrk.format("POST", "/products", nil, body)
end
