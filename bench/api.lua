-- wrk script for the server API benchmark (bench/run.sh api).
-- Sends env METHOD (default POST) with the body in env BODY (or the file in
-- env BODY_FILE) and the API key
-- in env API_KEY and prints one ROWAPI line. run.sh checks beforehand (with
-- curl) that the body gets a 200 without an "error", so the rate measured is
-- the rate of real work.
local key = os.getenv("API_KEY") or ""
local body = os.getenv("BODY") or ""
local file = os.getenv("BODY_FILE")
if file then
  local f = assert(io.open(file, "rb"))
  body = f:read("*a")
  f:close()
end
wrk.method = os.getenv("METHOD") or "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = key

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format(
    "ROWAPI requests=%d seconds=%.2f rps=%.0f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
