"""SQL dialects: the few places where DuckDB and ClickHouse spell the same thing differently.

The renderer writes every query once and asks the dialect for these spellings, so a new
backend adds a `Dialect`, not a second copy of the queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def _ch_type(value: object) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, (list, tuple)):
        return "Array(String)"
    return "String"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one SQL engine spells placeholders, percentiles, conditional counts and division."""

    name: str
    #: Whether a newest-first read (a span list, the newest N) should read time windows below
    #: the newest hour (`SqlStore`) rather than leave the whole range to the engine. ClickHouse
    #: sorts every span of the range (2M spans: the latest 50 errors 42 ms, 27 windowed);
    #: DuckDB's top-N prunes by its zone maps itself (1.8 ms, 7.1 windowed).
    newest_in_windows: bool = False

    def placeholder(self, name: str, value: object) -> str:
        """The text that binds parameter `name` (typed in ClickHouse, named in DuckDB)."""
        if self.name == "clickhouse":
            return "{" + f"{name}:{_ch_type(value)}" + "}"
        return f"${name}"

    def quantiles(self, expr: str, qs: Sequence[float]) -> str:
        """Exact quantiles of `expr`, linearly interpolated (R7) so both engines agree."""
        levels = ", ".join(repr(float(q)) for q in qs)
        if self.name == "clickhouse":
            return f"quantilesExactInclusive({levels})({expr})"
        return f"quantile_cont({expr}, [{levels}])"

    def quantile(self, expr: str, q: float) -> str:
        """One exact quantile of `expr`."""
        if self.name == "clickhouse":
            return f"quantileExactInclusive({float(q)!r})({expr})"
        return f"quantile_cont({expr}, {float(q)!r})"

    def count_if(self, cond: str) -> str:
        """Number of rows where `cond` holds."""
        return f"countIf({cond})" if self.name == "clickhouse" else f"count_if({cond})"

    def float_sum(self, expr: str) -> str:
        """The sum of a floating-point column (costs), the same whatever order its rows come in.

        ClickHouse sums in parallel threads, in an order that changes from one run to the
        next: plain float sums of the same rows differed in the last digit between two
        queries, and so did compensated (Kahan) ones. Decimal addition does not depend on the
        order: each value is taken to 18 decimal places (ingest bounds a cost and refuses
        NaN), the sum back to a float. DuckDB's float sum is already stable.
        """
        if self.name == "clickhouse":
            return f"toFloat64(sum(toDecimal128({expr}, 18)))"
        return f"sum({expr})"

    def wide_sum(self, expr: str) -> str:
        """The sum of an integer column past int64 (a rollup's sums of durations and tokens):
        DuckDB's sum of BIGINT is a HUGEINT already; ClickHouse's would wrap around."""
        return f"sum(toInt128({expr}))" if self.name == "clickhouse" else f"sum({expr})"

    def int_div(self, num: str, den: str) -> str:
        """Integer division rounding toward minus infinity for our non-negative times."""
        return f"intDiv({num}, {den})" if self.name == "clickhouse" else f"({num} // {den})"

    def contains(self, array: str, expr: str) -> str:
        """Whether the array `array` (a bound list) holds the value of `expr`."""
        if self.name == "clickhouse":
            return f"has({array}, {expr})"
        return f"list_contains({array}, {expr})"


DUCKDB = Dialect("duckdb")
CLICKHOUSE = Dialect("clickhouse", newest_in_windows=True)


@dataclass(slots=True)
class Params:
    """Collects bound parameters while a query is rendered; user input never enters the SQL."""

    dialect: Dialect
    values: dict[str, object] = field(default_factory=dict)

    def __call__(self, value: object) -> str:
        """Bind `value` and return its placeholder."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return self.dialect.placeholder(name, value)

    def many(self, values: Sequence[object]) -> str:
        """Bind each value; return `(ph1, ph2, ...)` for an IN list."""
        return "(" + ", ".join(self(v) for v in values) + ")"
