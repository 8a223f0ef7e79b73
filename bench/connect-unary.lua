-- wrk script: Connect unary POST with a fixed protobuf body of BODY_BYTES bytes.
local size = tonumber(os.getenv("BODY_BYTES") or "1024")
-- field 2 (bytes), length-delimited: tag 0x12, varint length, payload
local payload = string.rep("x", size - 3)
local function varint(n)
  local s = ""
  while n > 127 do s = s .. string.char(n % 128 + 128); n = math.floor(n / 128) end
  return s .. string.char(n)
end
local body = "\x12" .. varint(#payload) .. payload
wrk.method = "POST"
wrk.path = "/bridge.test.v1.TestService/Unary"
wrk.headers["Content-Type"] = "application/proto"
wrk.headers["Connect-Protocol-Version"] = "1"
wrk.body = body
