-- wrk script: single-event POST /v1/analytics/events, a unique eventId per request.
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local run = math.random(1, 1e9)
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = string.format('{"eventType":"email_open","eventId":"b%d-%d","leadId":"L1","messageId":"m%d","workflowExecutionId":"x1"}', run, counter, counter % 1000)
  return wrk.format(nil, nil, nil, body)
end
