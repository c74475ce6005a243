"""Prometheus's alert templates (`{{ $labels.instance }}`, `{{ $value | humanize }}`), pure.

Labels and annotations of a PromQL rule are Go templates, as in a Prometheus rules file. What
rules files use is expanded here: `$labels.NAME`, `.Labels.NAME`, `index $labels "NAME"`,
`$value`, `.Value`, quoted strings and numbers, through pipelines or calls of `humanize`,
`humanize1024`, `humanizePercentage`, `humanizeDuration`, `printf`, `toUpper`, `toLower`,
`title`, with `{{-`/`-}}` trimming. An action it does not know is left as written, so a
notification never loses its text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|[^\s|]+|\|')
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Unknown(Exception):
    """An action this module does not expand (it stays as written)."""


def go_float(v: float) -> str:
    """A float as Go's `%v` prints it: `100`, `0.95`, `1e+06`, `NaN`, `+Inf`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    sign, digits, exp = Decimal(repr(v)).normalize().as_tuple()
    assert isinstance(exp, int)
    nd, dp = len(digits), len(digits) + exp
    eprec = nd if 6 > nd >= dp else 6
    text = "".join(map(str, digits))
    minus = "-" if sign else ""
    if dp - 1 < -4 or dp - 1 >= eprec:
        mantissa = text[0] + ("." + text[1:] if nd > 1 else "")
        e = dp - 1
        return f"{minus}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if dp <= 0:
        return f"{minus}0.{'0' * -dp}{text}"
    if dp >= nd:
        return minus + text + "0" * (dp - nd)
    return f"{minus}{text[:dp]}.{text[dp:]}"


def _g4(v: float) -> str:
    """Go's `%.4g`."""
    if math.isnan(v) or math.isinf(v):
        return go_float(v)
    return f"{v:.4g}"


def _number(x: Any) -> float:
    if isinstance(x, float | int):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        raise _Unknown from None


def humanize(x: Any) -> str:
    """`humanize`: 4 significant digits and an SI prefix (`1.234k`, `12.5m`)."""
    v = _number(x)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(x: Any) -> str:
    """`humanize1024`: binary prefixes (`1.5Gi`)."""
    v = _number(x)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(x: Any) -> str:
    """`humanizeDuration`: seconds as `1d 2h 3m 4s`, or `12.5ms` under a second."""
    v = _number(x)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return "0s"
    if abs(v) >= 1:
        sign, v = ("-", -v) if v < 0 else ("", v)
        whole = int(v)
        days, hours = whole // 86400, whole // 3600 % 24
        minutes, seconds = whole // 60 % 60, whole % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def _printf(fmt: Any, *args: Any) -> str:
    text = str(fmt).replace("%v", "%s")
    shown = tuple(go_float(a) if isinstance(a, float) and "%s" in text else a for a in args)
    try:
        return text % shown
    except (TypeError, ValueError):
        raise _Unknown from None


def _index(mapping: Any, key: Any) -> str:
    if not isinstance(mapping, Mapping):
        raise _Unknown
    return str(mapping.get(str(key), ""))


_FUNCTIONS: dict[str, Callable[..., str]] = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizePercentage": lambda x: _g4(_number(x) * 100) + "%",
    "humanizeDuration": humanize_duration,
    "printf": _printf,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "index": _index,
}


def _operand(word: str, labels: Mapping[str, str], value: float | None) -> Any:
    if word in ("$value", ".Value"):
        return math.nan if value is None else value
    if word in ("$labels", ".Labels"):
        return labels
    for prefix in ("$labels.", ".Labels."):
        if word.startswith(prefix):
            return labels.get(word[len(prefix) :], "")
    if word[:1] == '"':
        return word[1:-1].encode().decode("unicode_escape")
    if word[:1] == "`":
        return word[1:-1]
    if _NUMBER.fullmatch(word):
        return float(word)
    raise _Unknown


def _command(words: list[str], piped: list[Any], labels: Mapping[str, str], v: float | None) -> Any:
    if not words:
        raise _Unknown
    head, rest = words[0], words[1:]
    if head in _FUNCTIONS:
        args = [_operand(w, labels, v) for w in rest] + piped
        return _FUNCTIONS[head](*args)
    if rest or piped:
        raise _Unknown
    return _operand(head, labels, v)


def _shown(result: Any) -> str:
    if isinstance(result, float):
        return go_float(result)
    if isinstance(result, Mapping):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(result.items())) + "]"
    return str(result)


def _action(text: str, labels: Mapping[str, str], value: float | None) -> str:
    words = _WORD.findall(text)
    stages: list[list[str]] = [[]]
    for w in words:
        if w == "|":
            stages.append([])
        else:
            stages[-1].append(w)
    result: list[Any] = []
    for stage in stages:
        result = [_command(stage, result, labels, value)]
    return _shown(result[0])


def expand(template: str, labels: Mapping[str, str], value: float | None) -> str:
    """A template with its actions expanded for one alert (its labels and value)."""
    out: list[str] = []
    at, trim_next = 0, False
    for m in _ACTION.finditer(template):
        before = template[at : m.start()]
        if trim_next:
            before = before.lstrip()
        if m.group(1):
            before = before.rstrip()
        out.append(before)
        try:
            out.append(_action(m.group(2), labels, value))
        except (_Unknown, TypeError, ValueError, OverflowError):
            out.append(m.group(0))
        at, trim_next = m.end(), bool(m.group(3))
    rest = template[at:]
    out.append(rest.lstrip() if trim_next else rest)
    return "".join(out)
