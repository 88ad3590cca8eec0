"""Prometheus metrics of the agents (served by the worker on TAMS_WORKER_METRICS_PORT)."""

from prometheus_client import Counter, Histogram

EVENTS = Counter("tams_agent_messages_total", "Messages handled by the agent, by topic and outcome",
                 ["topic", "outcome"])
DEAD_LETTERS = Counter("tams_agent_dead_letters_total", "Messages sent to the dead-letter topic, by reason", ["reason"])
BATCH_SIZE = Histogram("tams_agent_batch_messages", "Messages per applied batch",
                       buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
BATCH_SECONDS = Histogram("tams_agent_batch_seconds", "Time to apply one batch durably",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PHASE_SECONDS = Histogram("tams_agent_phase_seconds", "Time per batch in each phase of applying it", ["phase"],
                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
MEDIA_RETRIES = Counter("tams_agent_media_retries_total",
                        "Media-store calls retried because the store was unreachable, by operation", ["operation"])
MEDIA_DELETED = Counter("tams_agent_media_objects_deleted_total",
                        "Controlled object copies whose bytes were deleted, by cause", ["cause"])
BATCH_RETRIES = Counter("tams_agent_batch_retries_total", "Batches applied again after a failed attempt")
