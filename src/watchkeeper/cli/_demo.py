"""`watchkeeper demo`: the server, a demo AI service and its load, one command. The server
runs as a child that dies with the demo, and stops last (after the app flushed its spans)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from watchkeeper.cli._commands import Command, _guarded, _load, _server_options
from watchkeeper.errors import WatchkeeperError


def _demo_options(p: argparse.ArgumentParser) -> None:
    _server_options(p)
    p.add_argument("--rate", type=float, default=8.0, help="demo requests per second")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: forever)")
    p.add_argument("--demo-port", type=int, default=8000, help="port of the demo AI service")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WatchkeeperError(f"the server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise WatchkeeperError(f"the server did not become ready at {url} in {timeout_s:.0f} s")


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """In the server child, before exec: Linux sends it SIGTERM if `watchkeeper demo` dies."""
    with contextlib.suppress(Exception):  # not Linux: the parent's `finally` stops it
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _start_server(cmd: list[str]) -> subprocess.Popen[bytes]:
    """The demo's server in a process group of its own: a terminal's Ctrl-C reaches only
    `watchkeeper demo`, which stops the load and the app (flushing their spans) first and the
    server last. It still dies with the demo, whatever kills it."""
    return subprocess.Popen(cmd, process_group=0, preexec_fn=_die_with_parent)


def _stop_server(server: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.kill()


def _demo(args: argparse.Namespace) -> int:
    """The server, the demo's AI service and its load, until Ctrl-C or `--duration`."""
    try:
        from watchkeeper.demo import (
            free_port,
            local_redis,
            schedule_from_env,
            scrape_jobs,
            write_server_config,
        )
        from watchkeeper.demo import main as demo_main
    except ImportError as exc:  # the demo's LLM clients come with the [demo] extra
        raise WatchkeeperError(
            f"the demo needs {exc.name}: pip install 'watchkeeper[demo]' (or scripts/setup.sh)"
        ) from None

    config = _load(args)
    url = f"http://127.0.0.1:{config.server.port}"
    cmd = [sys.executable, "-m", "watchkeeper", "serve", "--port", str(config.server.port)]
    cmd += ["--data-dir", str(config.server.data_dir)]
    with local_redis() as redis_exporter:
        # Without a config of the user's, the demo's own: its SLOs, its incident's alert
        # rule, and scrape jobs for its service's /metrics and the Redis it runs.
        args.demo_port = args.demo_port or free_port()
        jobs = scrape_jobs(args.demo_port, redis_exporter)
        if not args.config:
            path = config.server.data_dir / "demo-config.yaml"
            args.config = write_server_config(path, schedule_from_env(), jobs)
        status = _run_demo(args, [*cmd, "--config", str(args.config)], url, demo_main)
    # The app's spans are flushed and the server (and Redis) have stopped: skip the
    # interpreter's teardown, which took 1-3 s of a Ctrl-C on a busy machine (measured).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run_demo(args: argparse.Namespace, cmd: list[str], url: str, demo_main: Any) -> int:
    server = _start_server(cmd)
    try:
        _wait_ready(url, server)
        print(f"\n  Watchkeeper UI: {url}\n  demo AI service: http://127.0.0.1:{args.demo_port}\n")
        status = demo_main(
            ["--server-url", url, "--rate", str(args.rate), "--duration", str(args.duration),
             "--port", str(args.demo_port)]
        )  # fmt: skip
    except KeyboardInterrupt:
        status = 0
    finally:
        _stop_server(server)
    return int(status)


DEMO = Command("demo", "run the server, a demo AI service and load", _demo_options, _guarded(_demo))
