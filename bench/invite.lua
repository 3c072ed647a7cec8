-- wrk script: POST the seed body with a unique email on every request.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("AVARA_BENCH_KEY")
  math.randomseed(os.time() + (tid or 0) * 7919)
  prefix = string.format("%x%x", os.time(), math.random(0, 0xffffff))
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"canManageStudies":true,"clinicRole":"Radiologist","email":"dr.%s.%d@hospital.org",' ..
    '"firstName":"Sarah","hasDashboardAccess":true,"lastName":"Johnson","level":"member"}',
    prefix, counter)
  return wrk.format(nil, nil, nil, body)
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50=%.2f p99=%.2f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
