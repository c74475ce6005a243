"""`logs ship`'s delivery rules through its `post` seam: Retry-After and backoff while the
server is busy or away, 413 splits, a line refused alone is skipped with its number."""

from __future__ import annotations

import io

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from watchkeeper.cli._ship_parse import parse_line
from watchkeeper.cli._ship_send import Answer, Deliverer, Line, retry_after_s
from watchkeeper.errors import WatchkeeperError


def _lines(*texts: str) -> list[Line]:
    return [Line(i + 1, parse_line(t), 1_700_000_000 * 10**9) for i, t in enumerate(texts)]


def _bodies(body: bytes) -> list[str]:
    request = ExportLogsServiceRequest.FromString(body)
    return [
        r.body.string_value
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]


class Server:
    """Answers from a script, then by a rule; records what it was sent."""

    def __init__(self, script: list[Answer | OSError], rule: object = None) -> None:
        self.script, self.rule = script, rule
        self.sent: list[list[str]] = []

    def __call__(self, body: bytes) -> Answer:
        self.sent.append(_bodies(body))
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, OSError):
                raise step
            return step
        if callable(self.rule):
            answer: Answer = self.rule(self.sent[-1])
            return answer
        return Answer(200, None, b"")


def test_busy_and_away_servers_are_retried_honouring_retry_after() -> None:
    server = Server([Answer(503, 7.0, b""), OSError("refused"), Answer(429, None, b"")])
    sleeps: list[float] = []
    deliverer = Deliverer(server, "svc", {}, err=io.StringIO(), sleep=sleeps.append)
    deliverer.deliver(_lines("a", "b"))
    assert sleeps[0] == 7.0  # Retry-After
    assert 0.8 <= sleeps[1] <= 1.2 and 1.6 <= sleeps[2] <= 2.4  # backoff doubles
    assert server.sent == [["a", "b"]] * 4 and deliverer.tally.sent == 2


def test_413_splits_and_a_line_refused_alone_is_skipped_with_its_number() -> None:
    def rule(bodies: list[str]) -> Answer:
        if len(bodies) > 2:
            return Answer(413, None, b"too large")
        return Answer(400, None, b"bad line") if "bad" in bodies else Answer(200, None, b"")

    err = io.StringIO()
    deliverer = Deliverer(Server([], rule), "svc", {}, err=err, sleep=lambda _s: None)
    deliverer.deliver(_lines("a", "b", "c", "bad", "e"))
    tally = deliverer.tally
    assert (tally.sent, tally.skipped, tally.skipped_lines) == (4, 1, [4])
    assert "line 4 skipped: the server answered 400 to it alone: bad line" in err.getvalue()


def test_a_refusal_that_is_no_fault_of_the_lines_stops_without_skipping() -> None:
    deliverer = Deliverer(Server([Answer(401, None, b"no key")]), "svc", {}, err=io.StringIO())
    with pytest.raises(WatchkeeperError, match="answered 401: no key"):
        deliverer.deliver(_lines("a"))
    assert deliverer.tally.skipped == 0 and deliverer.tally.sent == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), (None, None), ("soon", None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)  # fmt: skip
def test_retry_after_values(header: str | None, expected: float | None) -> None:
    assert retry_after_s(header) == expected
