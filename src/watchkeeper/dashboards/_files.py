"""Dashboards as YAML files: the shipped ones (read-only, in this package) and the user's
(`<config directory>/dashboards/*.yaml`, one file per dashboard, named by its id), which the
API writes when someone saves a dashboard in the UI.

A file that cannot be read as a dashboard is left alone and reported (`problems`) instead of
hiding the others. A write goes to a temporary file renamed over the old one, so a reader
never sees half a dashboard.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError as PydanticError

from watchkeeper.config import describe
from watchkeeper.dashboards._model import Dashboard, parse_dashboard
from watchkeeper.errors import Conflict, NotFound, ValidationError

SHIPPED_DIR = Path(__file__).parent / "shipped"
MAX_FILE_BYTES = 256 * 1024
ALL_PROJECTS = "*"


@dataclass(frozen=True, slots=True)
class Entry:
    """A dashboard and where it comes from: `shipped` (read-only) or `file`."""

    dashboard: Dashboard
    source: str
    path: Path

    @property
    def editable(self) -> bool:
        """Whether the API may change or delete it."""
        return self.source == "file"


@dataclass(frozen=True, slots=True)
class Problem:
    """A file in the directory that is not a dashboard, and why."""

    file: str
    error: str


def read_dashboard(path: Path) -> Dashboard:
    """One YAML file as a dashboard; ValidationError saying what is wrong with it."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationError(f"{path.name} is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"{path.name} is not YAML text: {' '.join(str(exc).split())}"
        ) from None
    try:
        board = parse_dashboard(data)
    except PydanticError as exc:
        raise ValidationError(f"{path.name}: {describe(exc)}") from None
    if board.id != path.stem:
        raise ValidationError(
            f"{path.name} holds dashboard id {board.id!r}: name it {board.id}.yaml"
        )
    return board


def dump_dashboard(board: Dashboard) -> str:
    """A dashboard as the YAML we write (defaults left out, so files stay short)."""
    data = board.model_dump(mode="json", exclude_defaults=True)
    data = {"id": board.id, "title": board.title, **data}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


class DashboardFiles:
    """The shipped dashboards and a directory of the user's."""

    def __init__(self, directory: Path, shipped: Path = SHIPPED_DIR) -> None:
        self.directory = directory
        self.shipped = shipped
        self._lock = threading.Lock()  # one writer at a time

    def _scan(self, directory: Path, source: str) -> tuple[list[Entry], list[Problem]]:
        entries, problems = [], []
        if not directory.is_dir():
            return [], []
        for path in sorted(directory.glob("*.yaml")):
            try:
                entries.append(Entry(read_dashboard(path), source, path))
            except (ValidationError, OSError) as exc:
                problems.append(Problem(path.name, str(exc)))
        return entries, problems

    def scan(self) -> tuple[list[Entry], list[Problem]]:
        """Every dashboard (shipped first), and the user's files that are not dashboards."""
        shipped, _ = self._scan(self.shipped, "shipped")
        own, problems = self._scan(self.directory, "file")
        taken = {e.dashboard.id for e in shipped}
        for e in own:
            if e.dashboard.id in taken:
                problems.append(
                    Problem(e.path.name, f"id {e.dashboard.id!r} is a shipped dashboard's")
                )
        return shipped + [e for e in own if e.dashboard.id not in taken], problems

    def visible(self, project: str) -> tuple[list[Entry], list[Problem]]:
        """The dashboards of a project (its own and those of every project)."""
        entries, problems = self.scan()
        return [e for e in entries if e.dashboard.project in (project, ALL_PROJECTS)], problems

    def get(self, board_id: str, project: str) -> Entry:
        """One dashboard of the project; NotFound otherwise."""
        entries, _ = self.visible(project)
        for e in entries:
            if e.dashboard.id == board_id:
                return e
        raise NotFound(f"no dashboard {board_id!r}")

    def save(self, board: Dashboard, project: str, *, create: bool) -> Entry:
        """Write a dashboard of the project (create: refuse an id in use)."""
        with self._lock:
            entries, _ = self.scan()
            found = next((e for e in entries if e.dashboard.id == board.id), None)
            if found is not None and (create or not found.editable):
                what = "a shipped dashboard's" if not found.editable else "taken"
                raise Conflict(f"dashboard id {board.id!r} is {what}: choose another id")
            if found is not None and found.dashboard.project not in (project, ALL_PROJECTS):
                raise NotFound(f"no dashboard {board.id!r}")
            if found is None and not create:
                raise NotFound(f"no dashboard {board.id!r}")
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{board.id}.yaml"
            _write_atomic(path, dump_dashboard(board))
            return Entry(board, "file", path)

    def delete(self, board_id: str, project: str) -> None:
        """Remove a user's dashboard file; shipped ones cannot be removed."""
        with self._lock:
            entry = self.get(board_id, project)
            if not entry.editable:
                raise Conflict(f"dashboard {board_id!r} is shipped with Watchkeeper and stays")
            entry.path.unlink()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
