"""A Prometheus rules file (`groups:` of `alert`/`record` rules) as Watchkeeper rules.

Each alerting rule becomes a `promql` rule: `alert` its name (the `alertname` label), `expr`,
`for`, `keep_firing_for`, `labels` (a `severity` of critical, warning or info is also the
rule's severity) and `annotations` as written; the group's `interval` is how often it is
evaluated, its `limit` the rule's `max_groups`, its `labels` added to each rule's. Recording
rules are not evaluated: each is listed with the reason, and so is every alert that reads
what one records. A key Prometheus does not know is refused, as Prometheus refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import yaml
from pydantic import ValidationError as PydanticValidationError

from watchkeeper.alerting._model import JSON_BODY, Rule, parse_duration
from watchkeeper.alerting._notification import Severity
from watchkeeper.alerting.kinds import validate_rule
from watchkeeper.config import MAX_CONFIG_VALUES, describe, expanded_size
from watchkeeper.errors import ValidationError

_GROUP_KEYS = frozenset({"name", "interval", "limit", "rules", "labels", "query_offset"})
_RULE_KEYS = frozenset(
    {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
)
_NOT_ID = re.compile(r"[^A-Za-z0-9_.:-]+")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
MAX_RULES = 1000
RECORD_REASON = (
    "recording rules are not evaluated by Watchkeeper yet: keep this group in Prometheus, or "
    "write its expression into the alerts that read it"
)


@dataclass(frozen=True, slots=True)
class RulesFile:
    """The rules of a file, and what was left out (name, reason)."""

    rules: tuple[Rule, ...]
    skipped: tuple[tuple[str, str], ...]


def load_rules_file(
    source: str | Mapping[str, Any], project: str = "default", where: str = "rules file"
) -> RulesFile:
    """Read a rules file (its YAML text, or the mapping); ValidationError naming the group
    and rule, and saying what to fix, for anything Prometheus would refuse too."""
    doc = _document(source, where) if isinstance(source, str) else source
    if not isinstance(doc, Mapping) or not isinstance(doc.get("groups"), list):
        raise ValidationError(f"{where}: a rules file is a mapping with a list of groups:")
    extra = sorted(set(doc) - {"groups"})
    if extra:
        raise ValidationError(f"{where}: unknown key {extra[0]!r} (only groups:)")
    rules: list[Rule] = []
    skipped: list[tuple[str, str]] = []
    records: set[str] = set()
    names: set[str] = set()
    for g, group in enumerate(doc["groups"]):
        _group(group, g, project, where, rules, skipped, records, names)
    for rule in rules:
        read = sorted(records & set(_NAME.findall(getattr(rule, "expr", ""))))
        if read:
            why = f"loaded, but it reads {read[0]}, made by a recording rule: it finds no series"
            skipped.append((rule.title, why))
    return RulesFile(tuple(rules), tuple(skipped))


def _document(text: str, where: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is not None and expanded_size(node) > MAX_CONFIG_VALUES:
            raise ValidationError(
                f"{where}: more than {MAX_CONFIG_VALUES} values once its YAML aliases are "
                "expanded; write the values out instead of nesting aliases"
            )
        return None if node is None else loader.construct_document(node)
    except RecursionError:
        raise ValidationError(f"{where}: nested too deeply to be a rules file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ValidationError(f"{where}: not valid YAML: {problem}{at}") from None
    finally:
        loader.dispose()


def _group(
    group: Any,
    g: int,
    project: str,
    where: str,
    rules: list[Rule],
    skipped: list[tuple[str, str]],
    records: set[str],
    names: set[str],
) -> None:
    if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
        raise ValidationError(f"{where}: group {g + 1} needs a name")
    name = group["name"]
    at = f"{where}: group {name!r}"
    if name in names:
        raise ValidationError(f"{at}: two groups share this name")
    names.add(name)
    extra = sorted(set(group) - _GROUP_KEYS)
    if extra:
        raise ValidationError(f"{at}: unknown key {extra[0]!r}")
    if group.get("query_offset") not in (None, 0, "0s", "0"):
        raise ValidationError(f"{at}: query_offset is not supported; drop it")
    entries = group.get("rules") or []
    if not isinstance(entries, list):
        raise ValidationError(f"{at}: rules is a list")
    for i, entry in enumerate(entries):
        if len(rules) >= MAX_RULES:
            raise ValidationError(f"{where}: more than {MAX_RULES} rules; split the file")
        what = f"{at}, rule {i + 1}"
        if not isinstance(entry, Mapping):
            raise ValidationError(f"{what}: a rule is a mapping (alert or record, expr, ...)")
        extra = sorted(set(entry) - _RULE_KEYS)
        if extra:
            raise ValidationError(f"{what}: unknown key {extra[0]!r}")
        if ("alert" in entry) == ("record" in entry):
            raise ValidationError(f"{what}: a rule has either alert or record")
        if "record" in entry:
            records.add(str(entry["record"]))
            skipped.append((str(entry["record"]), RECORD_REASON))
            continue
        taken = {r.id for r in rules}
        rules.append(_alert(entry, group, project, f"{what} ({entry['alert']})", taken))


def _strings(value: Any, what: str, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what}: {field} is a mapping of names to texts")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _alert(
    entry: Mapping[str, Any], group: Mapping[str, Any], project: str, what: str, taken: set[str]
) -> Rule:
    alert = str(entry["alert"])
    if not _NAME.fullmatch(alert) or ":" in alert:
        raise ValidationError(f"{what}: invalid alert name {alert!r}")
    labels = {**_strings(group.get("labels"), what, "labels"),
              **_strings(entry.get("labels"), what, "labels")}  # fmt: skip
    data: dict[str, Any] = {
        "id": _unique_id(f"{group['name']}.{alert}", taken),
        "name": alert,
        "kind": "promql",
        "project": project,
        "expr": str(entry.get("expr") or ""),
        "labels": labels,
        "annotations": _strings(entry.get("annotations"), what, "annotations"),
    }
    if labels.get("severity") in get_args(Severity):
        data["severity"] = labels["severity"]
    for key in ("for", "keep_firing_for"):
        if entry.get(key) is not None:
            data[key] = entry[key]
    if group.get("interval") is not None:
        data["evaluate_every"] = group["interval"]
    if group.get("limit"):
        data["max_groups"] = group["limit"]
    try:
        for key in ("for", "keep_firing_for", "evaluate_every"):
            if key in data:
                parse_duration(data[key])
        return validate_rule(data, JSON_BODY)
    except PydanticValidationError as exc:
        raise ValidationError(f"{what}: {_problem(exc)}") from None
    except ValueError as exc:
        raise ValidationError(f"{what}: {exc}") from None


def _problem(exc: PydanticValidationError) -> str:
    """The rule's own check in its words (`expr: 1:6: parse error: ...`); else pydantic's."""
    first = exc.errors()[0]
    if not first["loc"] and first["type"] == "value_error":
        return str(first["ctx"]["error"])
    return describe(exc)


def _unique_id(text: str, taken: Sequence[str] | set[str]) -> str:
    base = _NOT_ID.sub("-", text).strip("-")[:110] or "rule"
    rule_id, n = base, 1
    while rule_id in taken:
        n += 1
        rule_id = f"{base}-{n}"
    return rule_id
