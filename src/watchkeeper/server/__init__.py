"""`watchkeeper serve`: OTLP receiver, query API, UI, alerting, all in one process."""
