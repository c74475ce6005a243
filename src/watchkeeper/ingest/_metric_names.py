"""OpenTelemetry names to Prometheus names, as the OTel "Prometheus and OpenMetrics
compatibility" specification says (and Prometheus's own OTLP receiver does).

- a metric name keeps `[a-zA-Z0-9_:]` (anything else becomes `_`, runs of `_` collapse), gets
  its unit as a suffix (`s` -> `_seconds`, `By` -> `_bytes`, `m/s` -> `_meters_per_second`,
  `{requests}` annotations dropped), `_ratio` for a gauge of unit `1`, and `_total` for a
  monotonic sum;
- a label name keeps `[a-zA-Z0-9_]`, gets `key_` before a leading digit; two attributes that
  sanitize to the same label join their values with `;` (sorted by the original key);
- `service.namespace/service.name` becomes `job`, `service.instance.id` becomes `instance`.

Pure functions, memoized: the same few names come back in every request.
"""

from __future__ import annotations

import functools
import re

_INVALID_METRIC = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]+")
_UNDERSCORES = re.compile(r"__+")

_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


def _clean(name: str) -> str:
    return _UNDERSCORES.sub("_", name).strip("_")


def _unit_words(unit: str) -> list[str]:
    """The words a unit adds to a metric name (none for `1` or an `{annotation}`)."""
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit or unit == "1":
        return []
    main, _, per = unit.partition("/")
    words = []
    if main:
        words.append(_UNITS.get(main, main))
    if per:
        words += ["per", _PER_UNITS.get(per, per)]
    return [w for part in words if (w := _clean(_INVALID_METRIC.sub("_", part)))]


@functools.lru_cache(maxsize=4096)
def metric_name(name: str, unit: str, kind: str, monotonic: bool) -> str:
    """The Prometheus name of an OTel metric; `kind` is gauge|sum|histogram|summary."""
    words = [w for w in _INVALID_METRIC.sub("_", name).split("_") if w]
    for word in _unit_words(unit):
        if word not in words:  # "http.duration.seconds" in s stays ..._seconds
            words.append(word)
    if kind == "gauge" and unit.strip() == "1" and "ratio" not in words:
        words.append("ratio")
    if kind == "sum" and monotonic:
        if words and words[-1] == "total":
            words.pop()
        words.append("total")
    out = "_".join(words) or "_"
    return "_" + out if out[0].isdigit() else out


@functools.lru_cache(maxsize=8192)
def label_name(key: str) -> str:
    """The Prometheus label name of an attribute key."""
    out = _INVALID_LABEL.sub("_", key)
    if not out:
        return "_"
    if out[0].isdigit():
        return "key_" + out
    if out.startswith("__") and not key.startswith("__"):
        return "key" + out  # `__name__`-like names are Prometheus's own
    return out


def labels_of(attributes: dict[str, str]) -> dict[str, str]:
    """Attributes (values already strings) as labels; colliding names join their values."""
    out: dict[str, str] = {}
    for key in sorted(attributes):
        value = attributes[key]
        name = label_name(key)
        out[name] = f"{out[name]};{value}" if name in out else value
    return out


#: Resource attributes not made labels: the same on every series of an SDK and changing with
#: its version (`telemetry.*`), or with every restart of the process (a new series each time).
_NOT_LABELS = ("telemetry.", "process.pid", "process.command", "process.parent_pid")


def resource_labels(attributes: dict[str, str]) -> dict[str, str]:
    """A resource's attributes as labels: `job` and `instance` from the service, the rest
    promoted as they are but for `_NOT_LABELS`."""
    rest = {k: v for k, v in attributes.items() if not k.startswith(_NOT_LABELS)}
    name = rest.pop("service.name", "")
    namespace = rest.pop("service.namespace", "")
    instance = rest.pop("service.instance.id", "")
    out = labels_of(rest)
    if name:
        out["job"] = f"{namespace}/{name}" if namespace else name
    if instance:
        out["instance"] = instance
    return out


def format_le(bound: float) -> str:
    """A bucket bound as Prometheus writes `le` (Go's 'f', -1: shortest, no exponent)."""
    if bound == float("inf"):
        return "+Inf"
    if bound == float("-inf"):
        return "-Inf"
    text = repr(float(bound))
    if "e" in text or "E" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text
