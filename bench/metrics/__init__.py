"""The metrics benchmark: `python -m bench.metrics` (see __main__)."""
