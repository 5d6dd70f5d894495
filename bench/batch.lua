-- wrk script: POST /v1/analytics/events/batch with 500 events, unique eventIds.
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local run = math.random(1, 1e9)
local counter = 0
local size = tonumber(os.getenv("BATCH_SIZE") or "500")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local items = {}
  for i = 1, size do
    counter = counter + 1
    items[i] = string.format('{"eventType":"email_open","eventId":"b%d-%d","leadId":"L%d","messageId":"m%d","workflowExecutionId":"x1","timestamp":"2026-11-26T10:00:00.000Z"}', run, counter, counter % 5000, counter % 1000)
  end
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(items, ",") .. ']}')
end
