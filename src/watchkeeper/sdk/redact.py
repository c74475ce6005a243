"""PII and secret redaction for captured content (pure functions, no I/O).

Each detector is a regular expression plus an optional validator: card numbers must pass the
Luhn check and start like a real card, IBANs must pass the ISO 13616 mod-97 check, so long
numeric ids and random strings are left alone. A finding is replaced by `[REDACTED:<kind>]`.

Known limits (see tests/sdk/data/redaction_cases.yaml): names, postal addresses and free-form
secrets without a telltale prefix or a "key"/"token" word before them are not detected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "card",
    "ssn",
    "iban",
    "api_key",
    "bearer",
    "custom",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of sensitive text: its kind and where it is (`text[start:end]`)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Detector:
    """A pattern for one kind; `group` picks the sensitive part; `valid` rejects look-alikes."""

    kind: str
    pattern: re.Pattern[str]
    group: int = 0
    valid: Callable[[str], bool] | None = None


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Issuer prefixes of the card networks in wide use; a Luhn-valid number without one of
# them is far more likely an order id than a card.
_CARD_PREFIX = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa
    r"|5[1-5]\d{14}|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # Amex
    r"|6(?:011|5\d\d|4[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|3(?:0[0-5]|[68]\d)\d{11,13}"  # Diners
    r"|62\d{14,17})$"  # UnionPay
)


def card_ok(text: str) -> bool:
    """True for a plausible payment card number (issuer prefix, length, Luhn)."""
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_ok(digits)


# Lengths of IBANs by country (ISO 13616 registry, the common ones); unknown countries
# are accepted on the checksum alone.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21,
    "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "TR": 26, "UA": 29, "SA": 24, "AE": 23, "IL": 23,
}  # fmt: skip


def iban_ok(text: str) -> bool:
    """True when the text is an IBAN with a valid mod-97 checksum."""
    iban = re.sub(r"\s", "", text).upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def phone_ok(text: str) -> bool:
    """True when a phone-looking match has a plausible number of digits."""
    digits = sum(ch.isdigit() for ch in text)
    return 7 <= digits <= 15


_SECRET_WORDS = (
    r"api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|access[_-]?token"
    r"|refresh[_-]?token|token|password|passwd|pwd|client[_-]?secret|private[_-]?key|key"
)


def secret_ok(text: str) -> bool:
    """True when a value after a secret word mixes letters and digits, as secrets do."""
    return any(ch.isdigit() for ch in text) and any(ch.isalpha() for ch in text)


DEFAULT_DETECTORS: tuple[Detector, ...] = (
    Detector("bearer", re.compile(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)"), group=1),
    Detector(
        "api_key",
        re.compile(
            r"\b(?:sk-(?:proj-|ant-(?:api\d\d-)?|live_|test_)?[A-Za-z0-9_\-]{20,}"
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
            r"|gh[pousr]_[A-Za-z0-9]{30,}"
            r"|github_pat_[A-Za-z0-9_]{40,}"
            r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
            r"|AIza[0-9A-Za-z_\-]{35}"
            r"|glpat-[A-Za-z0-9_\-]{20})"
        ),
    ),
    Detector(
        "api_key",
        re.compile(
            r"(?i)\b(?:" + _SECRET_WORDS + r")\b[\"']?\s*(?:[:=]|\bis\b)\s*[\"']?"
            r"([A-Za-z0-9_\-./+=]{12,})"
        ),
        group=1,
        valid=secret_ok,
    ),
    Detector(
        "email",
        re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"),
    ),
    Detector(
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b"),
        valid=iban_ok,
    ),
    Detector("card", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), valid=card_ok),
    Detector("ssn", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    Detector(
        "phone",
        re.compile(
            r"(?:(?<![\w+])\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,4}){1,4}\b"
            r"|(?<![\w\-])\(\d{3}\)\s?\d{3}[\s.\-]\d{4}\b"
            r"|(?<![\w\-.])\d{3}[.\-]\d{3}[.\-]\d{4}\b)"
        ),
        valid=phone_ok,
    ),
)  # fmt: skip


def compile_patterns(patterns: Iterable[str | re.Pattern[str]]) -> tuple[Detector, ...]:
    """Turn user patterns (strings or compiled) into detectors of kind "custom"."""
    out = []
    for p in patterns:
        compiled = p if isinstance(p, re.Pattern) else re.compile(p)
        out.append(Detector("custom", compiled))
    return tuple(out)


def find(text: str, detectors: Sequence[Detector] = DEFAULT_DETECTORS) -> list[Finding]:
    """All non-overlapping findings in `text`, in order; earlier detectors win overlaps."""
    found: list[Finding] = []
    for det in detectors:
        for m in det.pattern.finditer(text):
            start, end = m.span(det.group)
            if start == end or (det.valid is not None and not det.valid(m.group(det.group))):
                continue
            if not any(f.start < end and start < f.end for f in found):
                found.append(Finding(det.kind, start, end))
    found.sort(key=lambda f: f.start)
    return found


def redact(text: str, detectors: Sequence[Detector] = DEFAULT_DETECTORS) -> str:
    """Return `text` with every finding replaced by `[REDACTED:<kind>]`."""
    findings = find(text, detectors)
    if not findings:
        return text
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(f"[REDACTED:{f.kind}]")
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


class Redactor:
    """The default detectors plus extra patterns, ready to apply to captured text."""

    def __init__(self, extra_patterns: Iterable[str | re.Pattern[str]] = ()) -> None:
        self.detectors: tuple[Detector, ...] = DEFAULT_DETECTORS + compile_patterns(extra_patterns)

    def __call__(self, text: str) -> str:
        """Redact `text`."""
        return redact(text, self.detectors)
