"""A PromQL syntax error says where it is, at the line and column Prometheus gives.

promql-parser's messages carry no position; ours is computed (`query/_promql_errors.py`).
Each case is also given to Debian's `promtool check rules` (Prometheus's own parser), and
the positions must be the same.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.alerting.exports.conftest import tool
from watchkeeper.query import PromQLError, parse_promql

CASES = [
    ("sum(rate(foo[5m])", "1:18", "unclosed left parenthesis"),
    ("up ==", "1:6", "unexpected end of input"),
    ('foo{a="b"', "1:10", "unexpected end of input inside braces"),
    ("rate(foo[5x])", "1:10", "bad number or duration syntax: 5x"),
    ("foo bar", "1:5", 'unexpected identifier "bar"'),
    ("sum by (a) (x) +", "1:17", "unexpected end of input"),
    ("unknownfn(x)", "1:1", "unknown function with name 'unknownfn'"),
    ('up{a=~"("}', "1:4", "illegal regex"),
    ("1 +* 2", "1:4", "unexpected <op:*>"),
    ("foo[5m] offset", "1:15", "unexpected end of input in offset"),
    ("sum(x) by (a", "1:13", "unclosed left parenthesis"),
    ("x +\n  y z", "2:5", 'unexpected identifier "z"'),
    ('foo{a="b",,}', "1:11", 'unexpected ","'),
    (")", "1:2", "unexpected right parenthesis"),
    ("foo and", "1:8", "unexpected end of input"),
    ("histogram_quantile(0.9 rate(x[5m]))", "1:24", 'unexpected identifier "rate"'),
    ("x[5m", "1:5", "unexpected end of input inside brackets"),
    ('"abc', "1:1", "unterminated quoted string"),
    ("foo{a=b}", "1:7", "unexpected identifier 'b' in label matching"),
    ("sum without(x)", "1:15", "unexpected end of input"),
    ("rate(x)", "1:6", "expected type matrix in call to function 'rate'"),
    ("abs(x, y)", "1:1", "expected 1 argument(s) in call to 'abs'"),
    ("sum(x) == bool", "1:15", "unexpected end of input"),
]


@pytest.mark.parametrize(("text", "where", "message"), CASES)
def test_position_and_message(text: str, where: str, message: str) -> None:
    with pytest.raises(PromQLError) as caught:
        parse_promql(text)
    assert str(caught.value).startswith(f"{where}: parse error: ")
    assert message in str(caught.value)


def test_positions_are_prometheus_positions(tmp_path: Path) -> None:
    promtool = tool("promtool")
    rules = tmp_path / "rules.yml"
    for text, where, _ in CASES:
        rules.write_text(json.dumps({"groups": [{"name": "g", "rules": [
            {"alert": "a", "expr": text}]}]}))  # fmt: skip
        proc = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
        )
        found = re.search(r"could not parse expression: (\d+:\d+): parse error", proc.stderr)
        assert found is not None, (text, proc.stdout, proc.stderr)
        assert found.group(1) == where, text


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("x" + "+x" * 20_000, "1:502", "more than 250 operators in one expression"),
        ("(" * 20_000 + "x" + ")" * 20_000, "1:101", "brackets nested more than 100 deep"),
    ],
)
def test_an_expression_past_the_bounds_is_refused_before_the_parser(
    text: str, where: str, message: str
) -> None:
    """promql-parser crashes the process (a stack overflow) on ~5,000 chained operators."""
    with pytest.raises(PromQLError) as caught:
        parse_promql(text)
    assert str(caught.value) == f"{where}: parse error: {message}"
