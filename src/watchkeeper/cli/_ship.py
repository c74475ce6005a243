"""`watchkeeper logs ship FILE|-`: an app's JSON (or plain) output lines → OTLP logs.

At least once across restarts: the state file's position moves only after the server
answered 200, and the batch in flight at a crash is sent again with the same observed time,
so the server (which stores a record once per content) keeps one copy of each line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from watchkeeper.cli._ship_parse import parse_line
from watchkeeper.cli._ship_send import Deliverer, HttpPoster, Line, Tally
from watchkeeper.cli._ship_tail import (
    FileSource,
    Position,
    RawLine,
    Source,
    State,
    StdinSource,
    load_state,
    save_state,
)
from watchkeeper.errors import WatchkeeperError


def default_state_path(file: Path) -> Path:
    """Beside the input, hidden, named after it."""
    return file.with_name(f".{file.name}.ship-state")


def ship(args: argparse.Namespace) -> int:
    """Run `logs ship`; 0 when everything read was delivered (or skipped with a message)."""
    if args.batch_size < 1 or args.flush_interval <= 0:
        raise WatchkeeperError("--batch-size must be at least 1 and --flush-interval above 0")
    key = args.key or os.environ.get("WATCHKEEPER_API_KEY") or None
    extra: dict[str, str] = {}
    state_path: Path | None = None
    state = State()
    if args.file == "-":
        source: Source = StdinSource()
    else:
        path = Path(args.file).absolute()
        if not _wait_for(path, args.once):
            print(f"watchkeeper logs ship: {path}: no such file", file=sys.stderr)
            return 1
        state_path = args.state or default_state_path(path)
        source, state = _open_file(path, state_path, args.once)
        extra["log.file.path"] = str(path)
    deliverer = Deliverer(HttpPoster(args.url, key), args.service, extra)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C, with the summary
    # Interrupted: what was acknowledged is saved; the rest is read again next time.
    with contextlib.suppress(KeyboardInterrupt):
        run(source, deliverer, state_path, state, args.batch_size, args.flush_interval)
    _summary(deliverer.tally)
    return 0


def _open_file(path: Path, state_path: Path, once: bool) -> tuple[FileSource, State]:
    """The file, from where its state file says the server's acknowledgements reached."""
    try:
        state = load_state(state_path)
        return FileSource(path, state.acked, follow=not once), state
    except ValueError as exc:
        raise WatchkeeperError(str(exc)) from None
    except OSError as exc:
        raise WatchkeeperError(f"cannot read {path}: {exc}") from None


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_for(path: Path, once: bool) -> bool:
    """Whether the file exists; when following, wait for it to appear (as `tail -F`)."""
    if once or path.exists():
        return path.exists()
    print(f"watchkeeper logs ship: waiting for {path} to appear", file=sys.stderr)
    while not path.exists():
        time.sleep(0.5)
    return True


def _summary(tally: Tally) -> None:
    skipped = f", {tally.skipped} skipped (lines {_numbers(tally.skipped_lines)})"
    print(
        f"watchkeeper logs ship: {tally.sent} line(s) delivered"
        + (skipped if tally.skipped else "")
        + (f", {tally.rejected} refused by the server" if tally.rejected else ""),
        file=sys.stderr,
    )


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:20]))
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


def run(
    source: Source,
    deliverer: Deliverer,
    state_path: Path | None,
    state: State,
    batch_size: int,
    flush_s: float,
) -> None:
    """Read, batch and deliver until the source is done, saving the position after each
    acknowledged batch; the batch in flight at the last crash is sent again first, alone
    and with its observed time (lines without a time of their own then say the same)."""
    replay = state.pending if state.pending != state.acked else None
    while True:
        batch = _collect(source, batch_size, flush_s, replay)
        if not batch:
            if source.done:
                return
            continue
        observed = state.pending_observed_ns if replay else time.time_ns()
        replay = None
        last = batch[-1].end
        if state_path is not None and last is not None:
            state = State(state.acked, last, observed)
            save_state(state_path, state)
        deliverer.deliver([Line(raw.number, parse_line(raw.text), observed) for raw in batch])
        if state_path is not None and last is not None:
            state = State(last)
            save_state(state_path, state)


def _collect(source: Source, limit: int, flush_s: float, replay: Position | None) -> list[RawLine]:
    """A batch: `limit` lines, or what came within `flush_s` of its first line; when
    replaying, the lines up to the replayed batch's end and no further."""
    batch: list[RawLine] = []
    first_at: float | None = None
    while len(batch) < limit and not source.done:
        wait = flush_s if first_at is None else flush_s - (time.monotonic() - first_at)
        if wait <= 0:
            break
        got = source.take(1 if replay else limit - len(batch), wait)
        if not got:
            if batch:
                break
            continue
        first_at = first_at if first_at is not None else time.monotonic()
        batch += got
        if replay is not None and _reached(got[-1].end, replay):
            break
    return batch


def _reached(end: Position | None, target: Position) -> bool:
    return (
        end is not None
        and (end.inode, end.device) == (target.inode, target.device)
        and end.offset >= target.offset
    )
