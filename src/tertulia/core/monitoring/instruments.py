"""The Prometheus instruments every part of Tertulia updates (prometheus-client), served by
GET /metrics.

Counters and histograms are per process. Under `tertulia serve --workers N` the CLI points
PROMETHEUS_MULTIPROC_DIR at a fresh folder before the processes start, and prometheus-client
then keeps each process's values in files there that /metrics adds up, whichever process a
scrape reaches (gauges by the mode each names).
"""

from prometheus_client import Counter, Gauge, Histogram

# Seconds; chat replies stream for seconds, most other requests take milliseconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUESTS = Counter(
    "tertulia_http_requests",
    "HTTP requests answered, by face, method, route template and status.",
    ["face", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "tertulia_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its answer (a streamed reply included).",
    ["face", "method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "tertulia_http_requests_in_progress",
    "HTTP requests being answered now.",
    ["face"],
    multiprocess_mode="livesum",
)
WEBSOCKETS_OPEN = Gauge(
    "tertulia_websockets_open",
    "WebSocket connections open now.",
    ["face"],
    multiprocess_mode="livesum",
)
MODEL_TOKENS = Counter(
    "tertulia_model_tokens",
    "Tokens model calls used, by provider, model, task type and kind (prompt or completion).",
    ["provider", "model", "task_type", "kind"],
)
INGESTION_JOBS_FINISHED = Counter(
    "tertulia_ingestion_jobs_finished",
    "Ingestion jobs this process ran to the end, by outcome (done, superseded or failed).",
    ["outcome"],
)
INGESTION_JOBS = Gauge(
    "tertulia_ingestion_jobs",
    "Ingestion jobs in the database by status, counted when /metrics is read (every runner's).",
    ["status"],
    multiprocess_mode="mostrecent",
)
MONITORING_RECORDS_DROPPED = Counter(
    "tertulia_monitoring_records_dropped",
    "Request records or log lines dropped because too many waited for the database.",
    ["kind"],
)
MONITORING_WRITE_FAILURES = Counter(
    "tertulia_monitoring_write_failures",
    "Background writes of monitoring records that failed (they are tried again).",
)
