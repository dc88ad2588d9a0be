"""Prometheus metrics, exposed at /metrics."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("nmtune_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("nmtune_http_request_seconds", "HTTP request latency", ["method", "route"])
CACHE_HITS = Counter("nmtune_embedding_cache_hits_total", "Embedding cache hits")
CACHE_MISSES = Counter("nmtune_embedding_cache_misses_total", "Embedding cache misses")
SNAPSHOT_READS = Counter(
    "nmtune_feature_snapshot_reads_total",
    "Dataset feature snapshots read (a whole dataset's vectors in a few rows)",
)
BACKEND_BATCHES = Counter("nmtune_backend_batches_total", "Batches sent to embedding backends")
JOBS = Counter("nmtune_jobs_total", "Jobs finished", ["kind", "status"])
PREDICTIONS = Counter("nmtune_predictions_total", "Rows predicted")
