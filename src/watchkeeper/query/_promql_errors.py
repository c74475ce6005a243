"""Where a PromQL syntax error is: `promql-parser` says what is wrong but not where.

Prometheus answers `1:18: parse error: unclosed left parenthesis` (line and column of the
offending token, or of the end of the input). The position is worked out here from the text
and the parser's message: errors that name their place (a function, a regex, a duration)
are found by name; any other syntax error is at the first token after which no completion
of the text parses (each prefix is completed with a few operands and closing brackets, and
given to the same parser), or at the end of the input when every prefix could still go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SPACE = re.compile(r"(?:\s+|#[^\n]*)+")
_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)"""
    r"|(?P<open_string>[\"'`])"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z0-9_]*)"
    r"|(?P<identifier>[A-Za-z_:][A-Za-z0-9_:.]*)"
    r"|(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>])"
    r"|(?P<punct>[()\[\]{},@:])"
    r"|(?P<other>.)",
    re.DOTALL,
)
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
)
_SET_OPS = frozenset({"and", "or", "unless", "atan2"})
_CLOSER = {"(": ")", "[": "]", "{": "}"}
#: Parser messages of a text that cannot go on (the others are about types and names).
_SYNTAX = ("invalid promql query", "unexpected", "unclosed", "unterminated", "bad number")
_MIDDLES = ("", " x", " 1", ' "a"', ' ="a"', " 5m", " (a)", " 1, x", ")")
_ENDINGS = ("", " x", " (x)", " 1")
_CALL = re.compile(r"in call to (?:function )?'([^']+)'|unknown function with name '([^']+)'")
MAX_TOKENS = 400  # a longer text is not scanned: its error is shown at the end


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token: its kind, its text and where it starts (characters)."""

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        """Where it ends."""
        return self.start + len(self.text)

    def described(self) -> str:
        """The token as Prometheus names it in `unexpected ...`."""
        if self.kind == "identifier" and self.text.lower() in _SET_OPS:
            return f"<op:{self.text}>"
        if self.kind == "identifier" and self.text.lower() in _KEYWORDS:
            return f"<{self.text.lower()}>"
        if self.kind == "op":
            return f"<op:{self.text}>"
        if self.kind in ("identifier", "number", "string"):
            return f'{self.kind} "{self.text.strip(chr(34) + chr(39) + "`")}"'
        return f'"{self.text}"'


def tokens(text: str) -> list[Token]:
    """The tokens of a PromQL text (comments and spaces left out)."""
    out: list[Token] = []
    at = 0
    while at < len(text):
        space = _SPACE.match(text, at)
        if space:
            at = space.end()
            continue
        m = _TOKEN.match(text, at)
        assert m is not None and m.lastgroup is not None  # `other` takes any character
        out.append(Token(m.lastgroup, m.group(), at))
        at = m.end()
    return out


#: Binary operators and bracket depth an expression may hold: the parser (Rust, recursive)
#: crashes the process on a chain of ~5,000 operators or ~20,000 brackets, and evaluating one
#: recurses in Python; real expressions hold a few dozen.
MAX_OPERATORS = 250
MAX_DEPTH = 100
_BINARY = frozenset({"and", "or", "unless", "atan2"})


def too_complex(text: str) -> tuple[int, str] | None:
    """Where an expression passes the operator or nesting bound, and why (None: within)."""
    operators = depth = 0
    for t in tokens(text):
        if t.kind == "op" or (t.kind == "identifier" and t.text.lower() in _BINARY):
            operators += 1
            if operators > MAX_OPERATORS:
                return t.start, f"more than {MAX_OPERATORS} operators in one expression"
        elif t.text in _CLOSER:
            depth += 1
            if depth > MAX_DEPTH:
                return t.start, f"brackets nested more than {MAX_DEPTH} deep"
        elif t.text in (")", "]", "}"):
            depth -= 1
    return None


def position(text: str, offset: int) -> str:
    """`line:column` of a character offset, as Prometheus writes it (both from 1)."""
    before = text[:offset]
    line = before.count("\n") + 1
    return f"{line}:{offset - (before.rfind(chr(10)) + 1) + 1}"


def locate(text: str, message: str, parses: Callable[[str], str | None]) -> tuple[int, str]:
    """The offset of the error the parser reported as `message`, and the message to show
    (`parses(text)` is the parser's message for a text, None when it parses)."""
    toks = tokens(text)
    named = _by_name(text, message, toks)
    if named is not None:
        return named, message
    if any(s in message for s in ("end of input", "unclosed")):
        return len(text), message
    if len(toks) <= MAX_TOKENS:
        for i, tok in enumerate(toks):
            if not _viable(text[: tok.end], toks[: i + 1], parses):
                generic = message == "invalid promql query"
                return tok.start, f"unexpected {tok.described()}" if generic else message
    if message == "invalid promql query":
        return len(text), "unexpected end of input"
    return (len(text) if _is_syntax(message) else 0), message


def _is_syntax(message: str) -> bool:
    return any(s in message for s in _SYNTAX)


def _by_name(text: str, message: str, toks: list[Token]) -> int | None:
    """The offset of errors whose message names their place."""
    opened = next((t for t in toks if t.kind == "open_string"), None)
    if "unterminated quoted string" in message and opened is not None:
        return opened.start
    m = re.search(r"bad number or duration syntax: (\S+)", message)
    if m:
        return next((t.start for t in toks if t.text == m.group(1)), None)
    m = _CALL.search(message)
    if m:
        return _call_offset(toks, m.group(1) or m.group(2), message.startswith("expected type"))
    m = re.search(r"illegal regex for (.*)$", message, re.DOTALL)
    if m:
        for i, t in enumerate(toks):
            if t.kind == "string" and t.text[1:-1] == m.group(1) and i >= 2:
                return toks[i - 2].start  # the label name of `name =~ "regex"`
    if message.startswith("unexpected right parenthesis"):
        depth = 0
        for t in toks:
            depth += {"(": 1, ")": -1}.get(t.text, 0)
            if depth < 0:
                return t.end  # Prometheus's lexer reports it once past the parenthesis
    return None


def _call_offset(toks: list[Token], name: str, at_argument: bool) -> int | None:
    """Where a call of `name` starts (its first argument's start for a type error)."""
    for i, t in enumerate(toks[:-1]):
        if t.text == name and toks[i + 1].text == "(":
            return toks[i + 2].start if at_argument and i + 2 < len(toks) else t.start
    return None


def _viable(prefix: str, toks: list[Token], parses: Callable[[str], str | None]) -> bool:
    """Whether some completion of the prefix parses (or fails on types, not on syntax)."""
    stack: list[str] = []
    for t in toks:
        if t.text in _CLOSER:
            stack.append(_CLOSER[t.text])
        elif t.text in (")", "]", "}"):
            if not stack or stack[-1] != t.text:
                return False
            stack.pop()
    closers = "".join(reversed(stack))
    for middle in _MIDDLES:
        for ending in _ENDINGS:
            problem = parses(prefix + middle + closers + ending)
            if problem is None or not _is_syntax(problem):
                return True
    return False
