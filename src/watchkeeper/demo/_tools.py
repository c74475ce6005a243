"""The demo agent's tools (search, calculator, weather) and its deterministic planner."""

from __future__ import annotations

import ast
import hashlib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watchkeeper.demo._knowledge import DOCUMENTS

CITIES = ("Paris", "Berlin", "Tokyo", "Lisbon", "Oslo", "London", "Madrid", "Rome")
_EXPRESSION = re.compile(r"\d+(?:\.\d+)?(?:\s*(?:\*\*|[-+*/])\s*\d+(?:\.\d+)?)+")

_OPS: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


class ToolError(Exception):
    """A tool could not do what it was asked (bad input, or its backend failed)."""


@dataclass(frozen=True)
class ToolCall:
    """One step of the agent's plan: a tool and its argument."""

    tool: str
    argument: str


def calculator(expression: str) -> float:
    """Evaluate +, -, *, /, ** over numbers, without `eval`."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc
    return float(_evaluate(tree.body))


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ToolError("exponent too large")
        try:
            return float(_OPS[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise ToolError("division by zero") from exc
    raise ToolError("only numbers and + - * / ** are allowed")


def search(query: str, k: int = 2) -> list[str]:
    """Keyword search over the demo documents: ids of the best `k` matches."""
    words = {w.lower().strip("?.,") for w in query.split() if len(w) > 3}
    scored = [(sum(w in text.lower() for w in words), doc_id) for doc_id, text in DOCUMENTS]
    return [doc_id for score, doc_id in sorted(scored, reverse=True)[:k] if score > 0]


def weather(city: str) -> dict[str, Any]:
    """A deterministic forecast for `city` (the same city always gets the same weather)."""
    if city not in CITIES:
        raise ToolError(f"unknown city {city!r}")
    h = int.from_bytes(hashlib.sha256(city.encode()).digest()[:4], "big")
    sky = ("sunny", "cloudy", "rain", "windy")[h % 4]
    return {"city": city, "temperature_c": 5 + h % 25, "sky": sky}


def plan(task: str) -> list[ToolCall]:
    """The tool calls a task needs, read from its words (the planner LLM's stand-in)."""
    calls = [ToolCall("weather", c) for c in CITIES if c.lower() in task.lower()]
    calls += [ToolCall("calculator", m.group(0)) for m in _EXPRESSION.finditer(task)]
    if re.search(r"\b(search|find|docs?|policy|limits?)\b", task, re.IGNORECASE):
        calls.append(ToolCall("search", task))
    return calls


def run_tool(call: ToolCall) -> Any:
    """Run one planned tool call."""
    if call.tool == "calculator":
        return calculator(call.argument)
    if call.tool == "weather":
        return weather(call.argument)
    if call.tool == "search":
        return search(call.argument)
    raise ToolError(f"unknown tool {call.tool!r}")
