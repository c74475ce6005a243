"""The ingest path: OTLP decode → durable spool → normalize and price → batch writer."""

from watchkeeper.ingest._cost import Pricer, Rates, Tokens, cost_of, genai_prices_lookup
from watchkeeper.ingest._dead_letter import DeadLetter, Letter
from watchkeeper.ingest._decode import Decoded, RawSpan, Resource, decode, decompress, encoding_of
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
from watchkeeper.ingest._scrape import Scraper
from watchkeeper.ingest._service import IngestResult, IngestService, Reception
from watchkeeper.ingest._spool import Entry, Position, Record, Spool

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
