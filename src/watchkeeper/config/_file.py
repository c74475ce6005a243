"""A config file read safely, and validation problems said in one line.

Any input, however large or hostile, is refused in bounded time and memory: the file's size
is capped, and so is what its YAML aliases expand to. A Prometheus rules file is held to the
same bound (`expanded_size`); the alerting, dashboard and API models' problems are said the
same way (`describe`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from watchkeeper.errors import ConfigError

#: Keys whose values never appear in error messages.
SECRET_KEYS = frozenset({"auth.admin_token", "oidc.client_secret", "store.meta_url"})
#: A config file is a few KiB of YAML; parsing 1 MiB of it took 2.3 s (libyaml).
MAX_CONFIG_BYTES = 256 * 1024
#: Values a config may hold once YAML aliases are expanded: an alias names a shared value,
#: so nine levels of ten aliases (the "billion laughs") are a billion values to validate.
MAX_CONFIG_VALUES = 100_000
MAX_PROBLEMS = 3  # validation problems listed in one message
_SHOWN = 60  # characters of a bad value repeated in a message


def shown(value: Any) -> str:
    """A value as an error message repeats it: its repr, cut when long."""
    text = repr(value) if not isinstance(value, dict | list | tuple) else _short_repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _short_repr(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> str:
    # never the repr of a whole (maybe huge, maybe alias-expanded) structure
    if isinstance(value, dict):
        items = [f"{k!r}: {shown(v)}" for k, v in list(value.items())[:3]]
        return "{" + ", ".join(items) + (", ...}" if len(value) > 3 else "}")
    items = [shown(v) for v in value[:3]]
    return "[" + ", ".join(items) + (", ...]" if len(value) > 3 else "]")


def describe(err: ValidationError, prefix: str = "") -> str:
    """One line of the first problems pydantic found: `key: what is wrong (got value)`.

    `prefix` goes before each key (`alerting.`).
    """
    problems = []
    errors = err.errors()
    for e in errors[:MAX_PROBLEMS]:
        where = prefix + ".".join(str(p) for p in e["loc"]) or "(top level)"
        hint = "remove it or check its spelling" if e["type"] == "extra_forbidden" else e["msg"]
        got = "<hidden>" if where in SECRET_KEYS else shown(e.get("input"))
        problems.append(f"{where}: {hint} (got {got})")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS} more")
    return "; ".join(problems)


def read(path: Path) -> str:
    """The text of a config file, or a ConfigError saying why it cannot be one."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it or drop --config"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} is a directory; give the path of a YAML file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB; "
            "a configuration is a few KiB of YAML: is it the right file?"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}): is it the right file?"
        ) from None


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def expanded_size(root: yaml.Node, limit: int = MAX_CONFIG_VALUES) -> int:
    """How many values a YAML document holds once its aliases are expanded, up to limit + 1.

    Shared nodes are sized once (iteratively: no recursion limit); an alias inside its own
    anchor (a cycle) expands without end, so it counts as limit + 1.
    """
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            ancestors.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, limit + 1)
        elif key in ancestors:
            return limit + 1
        elif key not in sizes:
            ancestors.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))
    return sizes[id(root)]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())[:200]


def parse(text: str, path: Path) -> Any:
    """The YAML document of a config file, refused when its aliases expand too far."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"config file {path} holds more than {MAX_CONFIG_VALUES} values once its YAML "
                "aliases are expanded; write the values out instead of nesting aliases"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(
            f"config file {path} is nested too deeply to be a configuration"
        ) from None
    finally:
        loader.dispose()
