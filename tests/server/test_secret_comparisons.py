"""Every secret is compared in constant time: no `==` or `!=` between a secret and another
value anywhere in the server (keys, the admin token, and what later code adds: passwords,
session and CSRF tokens, signatures). A `==` leaks, through its timing, how much of a guess
was right; `hmac.compare_digest` does not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from watchkeeper.server._auth import KeyRing
from watchkeeper.store.meta import MetaStore

SRC = Path(__file__).resolve().parents[2] / "src" / "watchkeeper"
#: A name that holds a secret, or a digest compared as one (`input_tokens` is no secret).
SECRET = re.compile(r"(^|_)(token|secret|password|passwd|passphrase|digest|hexdigest|signature"
                    r"|csrf|api_key|key_hash|hmac)($|_)", re.I)  # fmt: skip
#: Comparisons that are not of a secret, each with why: (file, source text).
ALLOWED = {
    # An index lookup by the SHA-256 of a 256-bit random key: its timing tells about the
    # digest of a guess, which says nothing of any key's token.
    ("server/_auth.py", "api_keys.c.key_hash == digest"),
    # The same for a session: found (ended, or kept when the others end) by the SHA-256 of
    # its 256-bit random cookie token.
    ("server/_sessions.py", "sessions.c.token_hash == digest"),
    ("server/_sessions.py", "sessions.c.token_hash == _hash(token)"),
    ("server/_sessions.py", "sessions.c.token_hash != _hash(keep)"),
    # The audit chain's entry hashes are integrity values anyone who reads the log sees, not
    # secrets; `audit verify --expect` compares one in a local command.
    ("server/_audit.py", "stored == digest"),
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return ""


def equality_on_secrets(source: str) -> list[str]:
    """The `==`/`!=` comparisons in `source` between a secret and a non-constant."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if not isinstance(op, ast.Eq | ast.NotEq):
                continue
            if isinstance(left, ast.Constant) or isinstance(right, ast.Constant):
                continue  # `token == ""`, `digest is None`: no secret on both sides
            if SECRET.search(_name(left)) or SECRET.search(_name(right)):
                found.append(ast.get_source_segment(source, node) or ast.dump(node))
    return found


def test_no_secret_is_compared_with_equality() -> None:
    found = {(path.relative_to(SRC).as_posix(), text)
             for path in sorted(SRC.rglob("*.py"))
             for text in equality_on_secrets(path.read_text())}  # fmt: skip
    assert sorted(found - ALLOWED) == [], "compare secrets with hmac.compare_digest"
    assert found >= ALLOWED, "an allowed comparison is gone: drop it from ALLOWED"


def test_the_check_sees_what_it_looks_for() -> None:
    flagged = """
def check(token, expected, session, request, input_tokens, output_tokens):
    if token == expected: pass
    if request.headers["x-csrf"] != session.csrf_token: pass
    if hashlib.sha256(token).hexdigest() == stored: pass
    if token == "" or token is None or input_tokens == output_tokens: pass
"""
    assert len(equality_on_secrets(flagged)) == 3


def test_the_admin_token_is_recognised_whatever_the_length_of_a_guess(tmp_path: Path) -> None:
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    meta.create_all()
    token = "an-admin-token-of-thirty-two-chars"
    ring = KeyRing(meta, admin_token=token)
    assert ring.is_admin(token)
    for guess in ("", "a", token[:-1], token + "x", token.upper(), "é" * 40):
        assert not ring.is_admin(guess)
    assert not KeyRing(meta).is_admin(token)  # no admin token configured
