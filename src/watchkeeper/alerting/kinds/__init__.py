"""Rule kinds: one module per kind, each a `Rule` subclass holding its parameters and meaning.

A kind says what it reads from the store (`query`), how it judges that (`observe`), which
spans show why it fires (`examples`), its unit and the words the UI shows (`watches`,
`condition`), and its Prometheus form (`promql`). `RULE_KINDS` registers them: adding a kind
is one module and one line there (see CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import PlainValidator, SerializeAsAny, create_model

from watchkeeper.alerting._model import Rule
from watchkeeper.alerting.kinds._absence import AbsenceRule
from watchkeeper.alerting.kinds._anomaly import AnomalyRule
from watchkeeper.alerting.kinds._burn_rate import BurnRateRule
from watchkeeper.alerting.kinds._count import CountRule
from watchkeeper.alerting.kinds._latency import LatencyRule
from watchkeeper.alerting.kinds._log_count import LogCountRule
from watchkeeper.alerting.kinds._log_ratio import LogRatioRule
from watchkeeper.alerting.kinds._log_rule import LogQuery, LogRule
from watchkeeper.alerting.kinds._outcome_ratio import OutcomeRatioRule
from watchkeeper.alerting.kinds._promql import PromQLRule
from watchkeeper.alerting.kinds._score import ScoreRule
from watchkeeper.alerting.kinds._span import SpanRule
from watchkeeper.alerting.kinds._sum import SumRule

#: Every rule kind, in the order they are listed (one line per kind).
RULE_KINDS: tuple[type[Rule], ...] = (
    OutcomeRatioRule,
    LatencyRule,
    SumRule,
    CountRule,
    ScoreRule,
    AbsenceRule,
    AnomalyRule,
    BurnRateRule,
    PromQLRule,
    LogCountRule,
    LogRatioRule,
)


def kind_name(model: type[Rule]) -> str:
    """The `kind:` a rule model answers to (the default of its `kind` field)."""
    name: str = model.model_fields["kind"].default
    return name


KINDS: dict[str, type[Rule]] = {kind_name(m): m for m in RULE_KINDS}
_COMMON = frozenset(Rule.model_fields) | {"for"}
_PARAMS = frozenset(n for m in RULE_KINDS for n in m.model_fields) - _COMMON
# Validates `kind` alone, so an unknown kind is reported as before: `kind: Input should be ...`.
_KIND_ONLY = create_model("RuleKind", kind=(Literal[tuple(KINDS)], ...))  # type: ignore[arg-type]


def own_fields(model: type[Rule]) -> list[str]:
    """The parameters a kind adds to the fields every rule has."""
    return [n for n in model.model_fields if n not in _COMMON]


def validate_rule(data: Any, context: Mapping[str, Any] | None = None) -> Rule:
    """A rule of its kind's model, from a mapping (or a rule); raise pydantic's ValidationError.

    Parameters of other kinds are dropped, as they were always ignored: a rule stored or
    written with every kind's fields (as rules were dumped before kinds had models) still loads.
    """
    if isinstance(data, Rule):
        return data
    if not isinstance(data, Mapping):
        raise ValueError("a rule is a mapping of its fields (id, kind, threshold, ...)")
    _KIND_ONLY.model_validate({"kind": data["kind"]} if "kind" in data else {})
    model = KINDS[data["kind"]]
    mine = set(model.model_fields)
    mine_only = {k: v for k, v in data.items() if k not in _PARAMS - mine}
    return model.model_validate(mine_only, context=context)


if TYPE_CHECKING:
    RuleField = Rule
else:
    #: A `Rule` field of a config model: validated by its kind, dumped with its kind's fields.
    RuleField = Annotated[SerializeAsAny[Rule], PlainValidator(validate_rule)]

__all__ = [
    "KINDS",
    "RULE_KINDS",
    "AbsenceRule",
    "AnomalyRule",
    "BurnRateRule",
    "CountRule",
    "LatencyRule",
    "LogCountRule",
    "LogQuery",
    "LogRatioRule",
    "LogRule",
    "OutcomeRatioRule",
    "PromQLRule",
    "RuleField",
    "ScoreRule",
    "SpanRule",
    "SumRule",
    "kind_name",
    "own_fields",
    "validate_rule",
]
