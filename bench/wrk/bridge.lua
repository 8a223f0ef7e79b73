-- wrk script for every HTTP/1.1 scenario of bench/run.mjs. Environment:
--   KIND        unary-proto | unary-json | get | grpc-web | connect-stream | rest | rest-connect
--               (rest: PATCH /v4/messages/m1, a google.api.http binding of
--               bridge.test.rest.v1.Messaging/UpdateMessageAll; rest-connect: the
--               same call as Connect JSON)
--   BODY_BYTES  size of the protobuf message (bridge.test.v1.EchoRequest, field 2 bytes)
--   PROC        procedure path, default /bridge.test.v1.TestService/Unary
--   COUNT       x-count header: messages the upstream streams back (connect-stream)
--   ACCEPT_ENCODING  Connect-Accept-Encoding of a connect-stream request (e.g. gzip)
local kind = os.getenv("KIND") or "unary-proto"
local size = tonumber(os.getenv("BODY_BYTES") or "1024")
local proc = os.getenv("PROC") or "/bridge.test.v1.TestService/Unary"

local function varint(n)
  local s = ""
  while n > 127 do s = s .. string.char(n % 128 + 128); n = math.floor(n / 128) end
  return s .. string.char(n)
end
-- field 2 (bytes), length-delimited; the whole message is `size` bytes
local payloadLen = size - 2
while 1 + #varint(payloadLen) + payloadLen > size do payloadLen = payloadLen - 1 end
local payload = string.rep("x", payloadLen)
local message = "\x12" .. varint(payloadLen) .. payload

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data, url)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 4
    if not b then chars = 2 elseif not c then chars = 3 end
    for j = 1, chars do
      local k = math.floor(n / 64 ^ (4 - j)) % 64 + 1
      out[#out + 1] = alphabet:sub(k, k)
    end
    if not url then for _ = chars + 1, 4 do out[#out + 1] = "=" end end
  end
  local s = table.concat(out)
  if url then s = s:gsub("%+", "-"):gsub("/", "_") end
  return s
end
local function frame(data)
  local n = #data
  return "\0" .. string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256) .. data
end

wrk.method = "POST"
wrk.path = proc
if kind == "unary-proto" then
  wrk.headers["Content-Type"] = "application/proto"
  wrk.headers["Connect-Protocol-Version"] = "1"
  wrk.body = message
elseif kind == "unary-json" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Connect-Protocol-Version"] = "1"
  wrk.body = '{"payload":"' .. base64(payload, false) .. '"}'
elseif kind == "get" then
  wrk.method = "GET"
  wrk.path = proc .. "?connect=v1&encoding=proto&base64=1&message=" .. base64(message, true)
elseif kind == "grpc-web" then
  wrk.headers["Content-Type"] = "application/grpc-web+proto"
  wrk.headers["X-Grpc-Web"] = "1"
  wrk.body = frame(message)
elseif kind == "connect-stream" then
  wrk.headers["Content-Type"] = "application/connect+proto"
  wrk.headers["Connect-Protocol-Version"] = "1"
  wrk.headers["X-Count"] = os.getenv("COUNT") or "1"
  -- ACCEPT_ENCODING: codings the client takes for the response messages
  if os.getenv("ACCEPT_ENCODING") then wrk.headers["Connect-Accept-Encoding"] = os.getenv("ACCEPT_ENCODING") end
  wrk.body = frame(message)
elseif kind == "rest" then
  wrk.method = "PATCH"
  wrk.path = "/v4/messages/m1"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"text":"' .. payload .. '"}'
elseif kind == "rest-connect" then
  wrk.path = "/bridge.test.rest.v1.Messaging/UpdateMessageAll"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Connect-Protocol-Version"] = "1"
  wrk.body = '{"messageId":"m1","text":"' .. payload .. '"}'
else
  error("unknown KIND " .. kind)
end
