-- wrk script for bench/webhooks.py: each request is the next distinct, signed delivery from
-- the file given after `--`, one a line: path, timestamp, signature and body, tab-separated.
local deliveries = {}
local sent = 0

function init(args)
  for line in io.lines(args[1]) do
    local path, stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    deliveries[#deliveries + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Ultravox-Webhook-Timestamp"] = stamp,
      ["X-Ultravox-Webhook-Signature"] = signature,
    }, body)
  end
end

function request()
  sent = sent % #deliveries + 1
  return deliveries[sent]
end
