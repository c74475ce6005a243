"""PromQL: parsed by `promql-parser` (a maintained parser, PyPI), evaluated over the metric
store at every step of a query at once.

Selectors are rendered to the store's SQL (label matchers, time range); what PromQL does
with the samples (lookback, staleness, range functions, aggregation, vector matching) is
computed here with numpy, to Prometheus's definitions. Supported: selectors with matchers,
`offset`, range vectors, the range functions of `_promql_functions`, element-wise math,
`histogram_quantile`, `label_replace`, `time`/`vector`/`scalar`/`absent`, every
aggregation but `count_values`, and all binary and set operators with vector matching.
Not yet: subqueries, the `@` modifier, native histograms, `count_values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import promql_parser as pp

from watchkeeper.query import _promql_functions as fn
from watchkeeper.query import _promql_ops as ops
from watchkeeper.query._promql_errors import locate, position, too_complex
from watchkeeper.query._promql_values import (
    Floats,
    Matrix,
    PromQLError,
    Scalar,
    Series,
    String,
    Times,
    Value,
    Vector,
)
from watchkeeper.query._promql_windows import window_bounds
from watchkeeper.store.metrics import Matcher, MetricsStore, SampleBlock

# The parser's enums are not hashable: keyed by their names.
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_CARDINALITY = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}


_FAR_MS = 100 * 365 * 86_400_000


def _enum(value: Any) -> str:
    return str(value).rsplit(".", 1)[-1]


def _problem(text: str) -> str | None:
    """The parser's message for a text, None when it parses."""
    try:
        pp.parse(text)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def parse(text: str) -> Any:
    """The syntax tree of a PromQL expression; `PromQLError` with the parser's message and
    where it is, as Prometheus writes it (`1:18: parse error: unclosed left parenthesis`)."""
    bound = too_complex(text)
    if bound is not None:
        raise PromQLError(f"{position(text, bound[0])}: parse error: {bound[1]}")
    try:
        return pp.parse(text)
    except (ValueError, TypeError) as exc:
        offset, message = locate(text, str(exc), _problem)
        raise PromQLError(f"{position(text, offset)}: parse error: {message}") from None


def _ms(delta: timedelta | None) -> int:
    return 0 if delta is None else int(delta / timedelta(milliseconds=1))


def matchers_of(selector: Any) -> list[Matcher]:
    """A vector selector's matchers for the store (its metric name as `__name__=`)."""
    if selector.matchers.or_matchers:
        raise PromQLError("'or' between label matchers is not supported yet")
    out = [Matcher("__name__", "=", selector.name)] if selector.name else []
    for m in selector.matchers.matchers:
        out.append(Matcher(m.name, _MATCH_OPS[_enum(m.op)], m.value))
    if not any(m.op in ("=", "=~") and m.value for m in out) and not any(
        m.op == "!=" and m.value == "" for m in out
    ):
        raise PromQLError("vector selector must contain at least one non-empty matcher")
    return out


class Engine:
    """Evaluates PromQL over one `MetricsStore`."""

    def __init__(
        self, store: MetricsStore, *, lookback_ms: int = 300_000, max_samples: int = 50_000_000
    ) -> None:
        self.store = store
        self.lookback_ms = lookback_ms
        self.max_samples = max_samples

    def evaluate(self, project: str, text: str, steps: Sequence[int] | Times) -> Value:
        """The value of an expression at each step (ms since the epoch)."""
        return _Evaluation(self, project, np.asarray(steps, dtype=np.int64)).eval(parse(text))

    def instant(self, project: str, text: str, at_ms: int) -> list[tuple[dict[str, str], float]]:
        """The series of an expression at one time, as an alerting rule reads them: labels
        without `__name__`, and a scalar as one series without labels."""
        value = self.evaluate(project, text, [at_ms])
        if isinstance(value, Scalar):
            return [({}, float(value.values[0]))]
        if not isinstance(value, Vector):
            raise PromQLError(
                f"an alerting expression gives an instant vector or a scalar, not a "
                f"{_type_name(value)}"
            )
        return [
            ({k: v for k, v in s.labels.items() if k != "__name__"}, float(s.values[0]))
            for s in value.series
            if s.present[0]
        ]

    def has_metric(self, project: str, name: str) -> bool:
        """Whether the project holds a series of the metric."""
        return self.store.has_metric(project, name)


class _Evaluation:
    """One query's evaluation: its project, its steps and the samples it has loaded."""

    def __init__(self, engine: Engine, project: str, steps: np.ndarray[Any, Any]) -> None:
        self.engine = engine
        self.project = project
        self.steps = steps
        self.n = len(steps)
        self.loaded = 0

    def eval(self, node: Any) -> Value:
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise PromQLError(f"{type(node).__name__} is not supported yet")
        value: Value = handler(self, node)
        return value

    def _count(self, n: int) -> None:
        self.loaded += n
        if self.loaded > self.engine.max_samples:
            raise PromQLError(
                "query processing would load too many samples into memory in query execution",
                kind="execution",
            )

    def _ends(self, selector: Any, back_ms: int) -> np.ndarray[Any, Any]:
        """Each step's time moved back by the selector's offset."""
        if selector.at is not None:
            raise PromQLError("the @ modifier is not supported yet")
        offset = _ms(selector.offset)
        if abs(offset) + back_ms > _FAR_MS:
            raise PromQLError("an offset or range of more than 100 years is not supported")
        return self.steps - offset

    def _select(self, selector: Any, back_ms: int) -> tuple[SampleBlock, Times]:
        """The samples of the selector's series that the steps' windows reach back to."""
        ends = self._ends(selector, back_ms)
        block = self.engine.store.select_block(
            self.project, matchers_of(selector), int(ends.min()) - back_ms, int(ends.max())
        )
        self._count(len(block.t_ms))
        return block, ends

    def vector_selector(self, node: Any) -> Vector:
        lookback = self.engine.lookback_ms
        block, ends = self._select(node, lookback)
        # each step's value: the series' last sample in (step - lookback, step], if not stale
        lo, hi = window_bounds(block.t_ms, block.offsets, ends - lookback, ends)
        last = np.maximum(hi - 1, 0)
        present = (hi > lo) & ~block.stale[last] if len(block.t_ms) else hi > lo
        out = []
        for k in np.flatnonzero(present.any(axis=1)):
            out.append(Series(block.labels[k], block.values[last[k]], present[k]))
        return Vector(out)

    def matrix_selector(self, node: Any) -> Matrix:
        range_ms = _ms(node.range)
        block, ends = self._select(node.vector_selector, range_ms)
        if not block.stale.any():  # the block's arrays as they are: no copy of a day's
            return Matrix(block.labels, block.offsets, block.t_ms, block.values, range_ms, ends)
        keep = ~block.stale  # stale markers left out: each series' share of what is kept
        offsets = np.concatenate(([0], np.cumsum(keep)))[block.offsets]
        return Matrix(block.labels, offsets, block.t_ms[keep], block.values[keep], range_ms, ends)

    def scalar(self, node: Any, what: str) -> Floats:
        value = self.eval(node)
        if not isinstance(value, Scalar):
            raise PromQLError(f"expected type scalar in {what}, got {_type_name(value)}")
        return value.values

    def vector(self, node: Any, what: str) -> Vector:
        value = self.eval(node)
        if not isinstance(value, Vector):
            raise PromQLError(f"expected type instant vector in {what}, got {_type_name(value)}")
        return value

    def number(self, node: Any) -> Scalar:
        return Scalar(np.full(self.n, float(node.val)))

    def string(self, node: Any) -> String:
        return String(str(node.val))

    def paren(self, node: Any) -> Value:
        return self.eval(node.expr)

    def unary(self, node: Any) -> Value:
        value = self.eval(node.expr)
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            return ops.vector_scalar("*", value, np.full(self.n, -1.0), False, False)
        raise PromQLError("unary expression only allowed on expressions of type scalar or vector")

    def aggregate(self, node: Any) -> Vector:
        op = str(node.op)
        param = None
        if op in ("topk", "bottomk", "quantile"):
            param = self.scalar(node.param, f"aggregation {op}")
        elif op == "count_values":
            raise PromQLError("count_values() is not supported yet")
        vector = self.vector(node.expr, f"aggregation {op}")
        modifier = node.modifier
        names = list(modifier.labels) if modifier is not None else []
        without = modifier is not None and modifier.type == pp.AggModifierType.Without
        return ops.aggregate(op, vector, names, without, param)

    def binary(self, node: Any) -> Value:
        op = str(node.op)
        modifier = node.modifier
        return_bool = bool(modifier and modifier.return_bool)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return ops.scalar_binary(op, lhs.values, rhs.values, return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return ops.vector_scalar(op, lhs, rhs.values, False, return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return ops.vector_scalar(op, rhs, lhs.values, True, return_bool)
        if not (isinstance(lhs, Vector) and isinstance(rhs, Vector)):
            raise PromQLError("binary expression must contain only scalar and instant vector types")
        matching = modifier.matching if modifier is not None else None
        on = matching is not None and matching.type == pp.LabelModifierType.Include
        names = list(matching.labels) if matching is not None else []
        if op in ops.SET_OPERATORS:
            return ops.set_operation(op, lhs, rhs, on, names, self.n)
        card = _CARDINALITY[_enum(modifier.card)] if modifier is not None else "one-to-one"
        include = list(modifier.group_labels or []) if modifier is not None else []
        return ops.vector_binary(
            op, lhs, rhs, card=card, on=on, names=names, include=include,
            return_bool=return_bool, steps=self.n,
        )  # fmt: skip

    def call(self, node: Any) -> Value:
        name = node.func.name
        args = list(node.args)
        if name in fn.RANGE_FUNCTIONS:
            at = fn.RANGE_ARG.get(name, 0)
            matrix = self.eval(args[at])
            if not isinstance(matrix, Matrix):
                raise PromQLError(f"expected type range vector in call to function {name}")
            scalars = [self.scalar(a, f"call to function {name}") for i, a in enumerate(args)
                       if i != at]  # fmt: skip
            return fn.apply_range(name, matrix, scalars, self.n)
        if fn.is_elementwise(name):
            vector = self.vector(args[0], f"call to function {name}")
            scalars = [self.scalar(a, f"call to function {name}") for a in args[1:]]
            return fn.apply_elementwise(name, vector, scalars)
        return self._special(name, args)

    def _special(self, name: str, args: list[Any]) -> Value:
        what = f"call to function {name}"
        if name == "histogram_quantile":
            return fn.histogram_quantile(
                self.scalar(args[0], what), self.vector(args[1], what), self.n
            )
        if name == "time":
            return Scalar(self.steps / 1e3)
        if name == "vector":
            return Vector([Series({}, self.scalar(args[0], what), np.ones(self.n, dtype=bool))])
        if name == "scalar":
            return fn.scalar_of(self.vector(args[0], what), self.n)
        if name in ("sort", "sort_desc"):
            return self.vector(args[0], what)
        if name == "label_replace":
            return fn.label_replace(self.vector(args[0], what), [self.eval(a) for a in args[1:]])
        if name == "absent":
            return self._absent(args[0])
        raise PromQLError(f"function {name}() is not supported yet")

    def _absent(self, arg: Any) -> Vector:
        vector = self.vector(arg, "call to function absent")
        present = np.zeros(self.n, dtype=bool)
        for s in vector.series:
            present |= s.present
        labels: dict[str, str] = {}
        if isinstance(arg, pp.VectorSelector):
            for m in arg.matchers.matchers:
                if m.op == pp.MatchOp.Equal and m.name != "__name__":
                    labels[m.name] = m.value
        if present.all():
            return Vector([])
        return Vector([Series(labels, np.ones(self.n), ~present)])


def _type_name(value: Value) -> str:
    return {Vector: "instant vector", Scalar: "scalar", Matrix: "range vector"}.get(
        type(value), "string"
    )


_HANDLERS: dict[type, Any] = {
    pp.VectorSelector: _Evaluation.vector_selector,
    pp.MatrixSelector: _Evaluation.matrix_selector,
    pp.NumberLiteral: _Evaluation.number,
    pp.StringLiteral: _Evaluation.string,
    pp.ParenExpr: _Evaluation.paren,
    pp.UnaryExpr: _Evaluation.unary,
    pp.AggregateExpr: _Evaluation.aggregate,
    pp.BinaryExpr: _Evaluation.binary,
    pp.Call: _Evaluation.call,
}
