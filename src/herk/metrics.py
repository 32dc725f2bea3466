"""Herk's Prometheus metrics, in the default registry (one ``/metrics`` per herk process).

Gauges move by ``inc``/``dec`` rather than ``set`` so that several herk nodes in one process
(``megam up``, tests) add up instead of overwriting each other.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter(
    "megam_herk_jobs", "Jobs that reached an outcome, by type and outcome", ["type", "outcome"]
)
JOB_DURATION = Histogram(
    "megam_herk_job_duration_seconds",
    "Run time of a job attempt, from worker start to outcome",
    ["type"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, float("inf")),
)
QUEUE_WAIT = Histogram(
    "megam_herk_queue_wait_seconds",
    "Time from a request's creation to a worker starting it",
    ["type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, float("inf")),
)
IN_FLIGHT = Gauge(
    "megam_herk_jobs_in_flight", "Jobs a herk node holds (running or waiting for a worker)"
)
WORKERS = Gauge("megam_herk_workers", "Worker actors alive")
BUSY_WORKERS = Gauge("megam_herk_workers_busy", "Worker actors running a job")
DEAD_LETTERS = Counter(
    "megam_herk_dead_letters", "Requests sent to the dead-letter queue", ["kind"]
)
REDELIVERIES = Counter("megam_herk_redeliveries", "Requests the broker delivered again", ["type"])
RETRIES = Counter("megam_herk_retries", "Attempts re-published after a retryable failure", ["type"])
WORKER_REPLACEMENTS = Counter(
    "megam_herk_worker_replacements", "Worker actors replaced after a crash or a stuck job"
)
