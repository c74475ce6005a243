"""Redaction against a labelled set: exact expectations per case, precision/recall per kind."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from watchkeeper.sdk.redact import KINDS, Redactor, find, iban_ok, luhn_ok, redact

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "redaction_cases.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:40] for c in CASES])
def test_labelled_case(case: dict[str, Any]) -> None:
    found = sorted(f.kind for f in find(case["text"]))
    assert found == sorted(case.get("detected", case["expected"])), case.get("note")


def test_precision_and_recall_per_kind(capsys: pytest.CaptureFixture[str]) -> None:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for case in CASES:
        expected = Counter(case["expected"])
        found = Counter(f.kind for f in find(case["text"]))
        for kind in expected | found:
            hit = min(expected[kind], found[kind])
            tp[kind] += hit
            fp[kind] += found[kind] - hit
            fn[kind] += expected[kind] - hit
    rows = []
    for kind in sorted(tp | fp | fn):
        precision = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else 1.0
        recall = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else 1.0
        rows.append((kind, tp[kind], fp[kind], fn[kind], precision, recall))
    with capsys.disabled():
        print(f"\nredaction on {len(CASES)} labelled cases")
        print(f"{'kind':<8} {'tp':>3} {'fp':>3} {'fn':>3} {'precision':>9} {'recall':>6}")
        for kind, t, f, n, p, r in rows:
            print(f"{kind:<8} {t:>3} {f:>3} {n:>3} {p:>9.2f} {r:>6.2f}")
    # The labelled set documents every miss; no false positive is accepted.
    assert sum(fp.values()) == 0
    assert all(r >= 0.6 for *_, r in rows)


def test_redaction_replaces_each_finding_with_its_kind() -> None:
    text = "mail bob@x.io or call (415) 555-2671, card 4111 1111 1111 1111."
    assert redact(text) == ("mail [REDACTED:email] or call [REDACTED:phone], card [REDACTED:card].")
    assert redact("nothing here") == "nothing here"


def test_generic_secrets_keep_the_word_and_hide_the_value() -> None:
    assert redact("api_key=9f8e7d6c5b4a3210fedcba98") == "api_key=[REDACTED:api_key]"
    assert redact("Authorization: Bearer abc123def456ghi789") == (
        "Authorization: Bearer [REDACTED:bearer]"
    )


def test_extra_patterns_are_custom_findings() -> None:
    redactor = Redactor([r"EMP-\d{5}"])
    assert redactor("employee EMP-12345 (emp@corp.com)") == (
        "employee [REDACTED:custom] ([REDACTED:email])"
    )
    assert "custom" in KINDS


@pytest.mark.parametrize(
    ("digits", "ok"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_ok(digits) is ok


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("GB82 WEST 1234 5698 7654 33", False),
        ("DE89370400440532013000", True),
        ("DE8937040044053201300", False),  # wrong length for Germany
        ("XX00", False),
    ],
)
def test_iban_checksum(iban: str, ok: bool) -> None:
    assert iban_ok(iban) is ok
