"""`watchkeeper logs ship` as a subprocess against a real server: loggers' lines and stdin in,
the query API out; rotation, truncation, a SIGKILL and restart, the server away, 413."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.eventually import eventually
from tests.logs.logserver import log_server
from watchkeeper.server._services import Services

SRC = str(Path(__file__).resolve().parents[2] / "src")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
# A port of this worktree's range, for the server that comes back on the same address.
COMEBACK_PORT = int(os.environ.get("WATCHKEEPER_TEST_SHIP_PORT", "19421"))


def _ship(
    *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchkeeper", "logs", "ship", *args],
        input=stdin and stdin.decode(),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "watchkeeper", "logs", "ship", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "WATCHKEEPER_API_KEY": ""}


def _records(url: str, **params: Any) -> list[dict[str, Any]]:
    """Every stored record matching `params`, newest first (all pages)."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"range": "1h", "limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
        r = httpx.get(f"{url}/api/v1/logs", params=query, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["records"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def _stored(url: str, svc: Services, n: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The records once `n` are stored (or what is stored when the time is up)."""

    def read() -> list[dict[str, Any]]:
        svc.logs_ingest.flush(5)
        return _records(url)

    return eventually(read, timeout_s, 0.2, until=lambda rs: len(rs) >= n)


def _now_iso(offset_ms: int = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60)) + f".{offset_ms:03d}Z"


def test_each_logger_s_lines_are_stored_with_their_fields(tmp_path: Path) -> None:
    now_s = time.time() - 30
    lines = [
        json.dumps(
            {
                "text": "x",
                "record": {
                    "extra": {"trace_id": TRACE, "span_id": SPAN, "user": "ann"},
                    "function": "f",
                    "level": {"name": "WARNING", "no": 30},
                    "line": 3,
                    "message": "loguru line",
                    "name": "app.api",
                    "time": {"repr": "", "timestamp": now_s},
                    "file": {"path": "/a.py"},
                    "exception": None,
                },
            }
        ),
        json.dumps(
            {
                "event": "structlog line",
                "level": "error",
                "logger": "rag",
                "timestamp": _now_iso(),
                "trace_id": TRACE,
                "key": "k1",
            }
        ),
        json.dumps(
            {
                "asctime": _now_iso().replace("T", " ").rstrip("Z"),
                "levelname": "DEBUG",
                "name": "billing",
                "message": "json-logger line",
                "order": 7,
            }
        ),
        json.dumps(
            {
                "level": 60,
                "time": int(now_s * 1000),
                "pid": 12,
                "msg": "pino line",
                "service": "payments",
            }
        ),
        json.dumps({"name": "api", "level": 40, "msg": "bunyan line", "time": _now_iso(), "v": 0}),
        "INFO plain line",
        "",
        "{broken json",
    ]
    log = tmp_path / "app.log"
    log.write_text("\n".join(lines) + "\n")
    with log_server(tmp_path / "data") as (url, svc):
        done = _ship(str(log), "--once", "--url", url, "--service", "shop")
        assert done.returncode == 0, done.stderr
        assert "7 line(s) delivered" in done.stderr
        by_body = {r["body"]: r for r in _stored(url, svc, 7)}
    assert set(by_body) == {
        "loguru line",
        "structlog line",
        "json-logger line",
        "pino line",
        "bunyan line",
        "INFO plain line",
        "{broken json",
    }
    loguru = by_body["loguru line"]
    assert (loguru["severity_number"], loguru["scope"], loguru["service"]) == (
        13,
        "app.api",
        "shop",
    )
    assert (loguru["trace_id"], loguru["span_id"]) == (TRACE, SPAN)
    assert loguru["attributes"]["user"] == "ann" and loguru["attributes"]["code.line.number"] == 3
    assert loguru["attributes"]["log.file.path"] == str(log)
    assert abs(loguru["time_ms"] - now_s * 1000) < 1
    assert by_body["structlog line"]["severity"] == "error"
    assert by_body["structlog line"]["attributes"]["key"] == "k1"
    assert by_body["json-logger line"]["severity_text"] == "DEBUG"
    assert by_body["json-logger line"]["scope"] == "billing"
    assert by_body["pino line"]["service"] == "payments"
    assert by_body["pino line"]["severity"] == "fatal"
    assert by_body["pino line"]["time_ms"] == int(now_s * 1000)
    assert by_body["bunyan line"]["severity"] == "warn"
    assert by_body["INFO plain line"]["severity_number"] == 9
    assert by_body["{broken json"]["severity_number"] == 0


def test_stdin_is_read_to_its_end(tmp_path: Path) -> None:
    body = "".join(
        json.dumps({"msg": f"from stdin {i}", "level": "info"}) + "\n" for i in range(25)
    )
    with log_server(tmp_path / "data") as (url, svc):
        done = _ship("-", "--url", url, "--batch-size", "10", stdin=body.encode())
        assert done.returncode == 0, done.stderr
        stored = _stored(url, svc, 25)
    assert sorted(r["body"] for r in stored) == sorted(f"from stdin {i}" for i in range(25))


def test_a_missing_file_with_once_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    done = _ship(str(tmp_path / "nope.log"), "--once", "--url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "nope.log: no such file" in done.stderr


def _append(path: Path, start: int, count: int) -> None:
    with path.open("a") as f:
        f.writelines(f"line {i}\n" for i in range(start, start + count))


def _bodies(records: list[dict[str, Any]]) -> list[str]:
    return sorted(r["body"] for r in records)


def _expected(n: int) -> list[str]:
    return sorted(f"line {i}" for i in range(n))


def test_following_survives_rotation_by_rename_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 10)
    with log_server(tmp_path / "data") as (url, svc):
        shipper = _spawn(str(log), "--url", url, "--flush-interval", "0.1")
        try:
            assert len(_stored(url, svc, 10)) == 10
            _append(log, 10, 5)  # the writer appends, then rotation by rename
            log.rename(tmp_path / "app.log.1")
            _append(log, 15, 5)
            assert _bodies(_stored(url, svc, 20)) == _expected(20)
            time.sleep(0.5)  # the shipper reads the new file to its end first
            log.write_text("")  # copytruncate-style: the same file, emptied
            _append(log, 20, 3)
            assert _bodies(_stored(url, svc, 23)) == _expected(23)
        finally:
            shipper.terminate()  # SIGTERM: stops as Ctrl-C does, with its summary
            _out, err = shipper.communicate(timeout=30)
        assert "23 line(s) delivered" in err


def test_a_rotation_while_stopped_is_finished_in_the_renamed_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 5)
    with log_server(tmp_path / "data") as (url, svc):
        assert _ship(str(log), "--once", "--url", url).returncode == 0
        _append(log, 5, 3)  # written after the shipper stopped, then rotated away
        log.rename(tmp_path / "app.log.1")
        _append(log, 8, 4)
        done = _ship(str(log), "--once", "--url", url)
        assert done.returncode == 0, done.stderr
        assert "7 line(s) delivered" in done.stderr
        assert _bodies(_stored(url, svc, 12)) == _expected(12)


def test_a_sigkill_and_restart_stores_every_line_exactly_once(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    # Half the lines carry no time: a resent batch must say the same observed time.
    with log.open("w") as f:
        for i in range(3000):
            f.write(
                f"line {i}\n"
                if i % 2
                else json.dumps({"msg": f"line {i}", "ts": time.time()}) + "\n"
            )
    state = tmp_path / "ship.state"
    with log_server(tmp_path / "data") as (url, svc):
        shipper = _spawn(str(log), "--url", url, "--batch-size", "7", "--state", str(state))
        try:
            seen = _stored(url, svc, 300)
            assert len(seen) >= 300
        finally:
            shipper.kill()  # SIGKILL: no clean-up of any kind
            shipper.communicate(timeout=30)
        acked = json.loads(state.read_text())["acked"]["offset"]
        assert 0 < acked < log.stat().st_size, "the test needs a kill in the middle"
        done = _ship(str(log), "--once", "--url", url, "--state", str(state))
        assert done.returncode == 0, done.stderr
        stored = _stored(url, svc, 3000)  # everything was acknowledged: flushed, all there
    assert _bodies(stored) == _expected(3000)


def test_a_server_away_then_back_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 40)
    url = f"http://127.0.0.1:{COMEBACK_PORT}"
    shipper = _spawn(str(log), "--once", "--url", url, "--batch-size", "15")
    try:
        time.sleep(1.5)  # it retries against nothing
        assert shipper.poll() is None
        with log_server(tmp_path / "data", port=COMEBACK_PORT) as (_, svc):
            _out, err = shipper.communicate(timeout=60)
            assert shipper.returncode == 0, err
            assert "cannot reach" in err and "40 line(s) delivered" in err
            assert _bodies(_stored(url, svc, 40)) == _expected(40)
    finally:
        if shipper.poll() is None:
            shipper.kill()
            shipper.communicate()


def test_413_splits_the_batch_and_a_line_too_big_alone_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [f"line {i} " + "x" * 150 for i in range(60)]
    lines.insert(30, "huge " + "y" * 5000)
    log.write_text("\n".join(lines) + "\n")
    with log_server(tmp_path / "data", ingest={"max_body_bytes": 4096}) as (url, svc):
        done = _ship(str(log), "--once", "--url", url, "--batch-size", "60")
        assert done.returncode == 0, done.stderr
        assert "line 31 skipped: the server answered 413" in done.stderr
        assert "60 line(s) delivered, 1 skipped (lines 31)" in done.stderr
        stored = _stored(url, svc, 60)
    assert sorted(r["body"] for r in stored) == sorted(lines[:30] + lines[31:])


def test_the_batch_in_flight_at_a_crash_is_resent_as_it_was_sent(tmp_path: Path) -> None:
    """The state a kill leaves between the server's 200 and the state's save: the batch is
    stored but not acknowledged. Sent again, its lines without a time say the same observed
    time as before, so the server keeps one copy of each."""
    log = tmp_path / "app.log"
    _append(log, 0, 14)
    state = tmp_path / "ship.state"
    with log_server(tmp_path / "data") as (url, svc):
        first = _ship(str(log), "--once", "--url", url, "--batch-size", "7", "--state", str(state))
        assert first.returncode == 0, first.stderr
        stored = {r["body"]: r for r in _stored(url, svc, 14)}
        end = json.loads(state.read_text())["acked"]
        after_7 = dict(end, offset=len("".join(f"line {i}\n" for i in range(7))), line=7)
        crashed = {
            "acked": after_7,
            "pending": end,
            "pending_observed_ns": stored["line 7"]["observed_ns"],
        }
        state.write_text(json.dumps(crashed))
        _append(log, 14, 3)
        again = _ship(str(log), "--once", "--url", url, "--batch-size", "7", "--state", str(state))
        assert again.returncode == 0, again.stderr
        assert "10 line(s) delivered" in again.stderr  # 7 again, 3 new
        _stored(url, svc, 17)
        assert _bodies(_records(url)) == _expected(17)


def test_shipping_loads_no_server_dependency(tmp_path: Path) -> None:
    """The command runs where only the SDK is installed (protobuf, the standard library)."""
    log = tmp_path / "app.log"
    _append(log, 0, 3)
    server_only = ["fastapi", "starlette", "uvicorn", "duckdb", "pyarrow", "sqlalchemy",
                   "httpx", "orjson", "pydantic", "yaml", "zstandard"]  # fmt: skip
    with log_server(tmp_path / "data") as (url, svc):
        script = (
            "import sys; from watchkeeper.cli import main; "
            f"rc = main(['logs', 'ship', {str(log)!r}, '--once', '--url', {url!r}]); "
            f"print(sorted({{m.partition('.')[0] for m in sys.modules}} & set({server_only!r}))); "
            "sys.exit(rc)"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=60, env=_env())  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
        assert _bodies(_stored(url, svc, 3)) == _expected(3)


def test_a_state_file_that_is_not_one_is_a_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 1)
    state = tmp_path / "ship.state"
    state.write_text('{"acked": {"inode": 1}}')
    done = _ship(str(log), "--once", "--url", "http://127.0.0.1:9", "--state", str(state))
    assert done.returncode == 2
    assert f"the state file {state} cannot be read" in done.stderr
    assert "remove it to start from the beginning" in done.stderr
