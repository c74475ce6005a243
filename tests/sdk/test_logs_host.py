"""`watchkeeper.init` leaves the host app's logging as the app set it (issue 15).

Each case runs in a fresh interpreter: logging's configuration is process-wide, and what is
checked is what a real app prints on its stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

INIT = (
    "import logging, sys, watchkeeper\n"
    # Nothing listens there: init must neither raise nor wait for it.
    "watchkeeper.init('host-app', endpoint='http://127.0.0.1:9', json_logs=True)\n"
)


def _run(body: str) -> tuple[list[str], list[dict[str, object]]]:
    """Run INIT then `body`; (plain stderr lines, JSON stderr lines)."""
    done = subprocess.run(
        [sys.executable, "-c", INIT + textwrap.dedent(body) + "watchkeeper.shutdown(1)\n"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    return (
        [x for x in lines if not x.startswith("{")],
        [json.loads(x) for x in lines if x.startswith("{")],
    )


def test_init_does_not_turn_the_app_logging_to_info() -> None:
    plain, records = _run(
        """
        root = logging.getLogger()
        assert root.level == logging.WARNING, logging.getLevelName(root.level)
        assert root.handlers == [], root.handlers
        logging.getLogger("httpx").info("HTTP Request: POST http://llm/v1/chat 200 OK")
        logging.getLogger("app").warning("an app warning")
        logging.getLogger("watchkeeper.demo").info("the SDK's own record")
        """
    )
    assert not any("HTTP Request" in x for x in plain + [str(r) for r in records])
    assert plain == ["an app warning"]  # Python's default for an unconfigured app
    assert [(r["logger"], r["message"]) for r in records] == [
        ("watchkeeper.demo", "the SDK's own record")
    ]
    assert records[0]["service"] == "host-app"


def test_the_app_configures_its_logging_after_init_and_gets_what_it_asked_for() -> None:
    plain, records = _run(
        """
        logging.basicConfig(level=logging.INFO, format="APP %(name)s %(message)s")
        logging.getLogger("shop").info("order placed")
        logging.getLogger("watchkeeper.sdk").warning("once, as JSON")
        """
    )
    assert plain == ["APP shop order placed"]  # basicConfig was not pre-empted
    assert [r["message"] for r in records] == ["once, as JSON"]  # not also in the app's format


@pytest.mark.slow
def test_the_app_can_have_its_records_in_the_same_json_shape() -> None:
    _, records = _run(
        """
        handler = logging.StreamHandler()
        handler.setFormatter(watchkeeper.JsonFormatter("host-app"))
        logging.getLogger("shop").addHandler(handler)
        with watchkeeper.observe("checkout"):
            logging.getLogger("shop").warning("paid")
        """
    )
    (record,) = records
    assert record["logger"] == "shop" and record["message"] == "paid"
    assert len(str(record["trace_id"])) == 32
