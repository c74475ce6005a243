"""The ingest path: OTLP decode → durable spool → normalize and price → batch writer.

Names are imported when first used (PEP 562): each ingest worker process imports
`watchkeeper.ingest._workers`, which runs this file first, and must not load the metric
store, the scraper or the HTTP-side service with it (they took a worker from 45 to 145 MiB).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchkeeper.ingest._cost import Pricer, Rates, Tokens, cost_of, genai_prices_lookup
    from watchkeeper.ingest._dead_letter import DeadLetter, Letter
    from watchkeeper.ingest._decode import Decoded, RawSpan, Resource, decode
    from watchkeeper.ingest._logs_ingest import LogsIngest
    from watchkeeper.ingest._metrics_decode import DecodedMetrics, decode_metrics
    from watchkeeper.ingest._metrics_ingest import MetricsIngest
    from watchkeeper.ingest._normalize import (
        DEFAULT_STEPS,
        Draft,
        DropSpan,
        Normalized,
        Settings,
        Step,
        normalize,
    )
    from watchkeeper.ingest._otlp_values import decompress, encoding_of
    from watchkeeper.ingest._scrape import Scraper
    from watchkeeper.ingest._service import IngestResult, IngestService, Reception
    from watchkeeper.ingest._spool import Entry, Position, Record, Spool

#: Where each public name lives.
_HOMES = {
    **dict.fromkeys(("Pricer", "Rates", "Tokens", "cost_of", "genai_prices_lookup"), "_cost"),
    **dict.fromkeys(("DeadLetter", "Letter"), "_dead_letter"),
    **dict.fromkeys(("Decoded", "RawSpan", "Resource", "decode"), "_decode"),
    **dict.fromkeys(("decompress", "encoding_of"), "_otlp_values"),
    **dict.fromkeys(("DecodedMetrics", "decode_metrics"), "_metrics_decode"),
    "LogsIngest": "_logs_ingest",
    "MetricsIngest": "_metrics_ingest",
    **dict.fromkeys(
        ("DEFAULT_STEPS", "Draft", "DropSpan", "Normalized", "Settings", "Step", "normalize"),
        "_normalize",
    ),
    "Scraper": "_scrape",
    **dict.fromkeys(("IngestResult", "IngestService", "Reception"), "_service"),
    **dict.fromkeys(("Entry", "Position", "Record", "Spool"), "_spool"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_STEPS",
    "DeadLetter",
    "Decoded",
    "DecodedMetrics",
    "Draft",
    "DropSpan",
    "Entry",
    "IngestResult",
    "IngestService",
    "Letter",
    "LogsIngest",
    "MetricsIngest",
    "Normalized",
    "Position",
    "Pricer",
    "Rates",
    "RawSpan",
    "Reception",
    "Record",
    "Resource",
    "Scraper",
    "Settings",
    "Spool",
    "Step",
    "Tokens",
    "cost_of",
    "decode",
    "decode_metrics",
    "decompress",
    "encoding_of",
    "genai_prices_lookup",
    "normalize",
]
