"""Alerting benchmark: notification latency under ingest load, CPU cost of 200 rules."""
