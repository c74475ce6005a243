"""Cost of the LLM wrappers and of `feedback()` in the app's thread (not a test; run by hand).

    .venv/bin/python -m tests.sdk.integrations.bench_wrappers

The wrapped `create` is called on a stand-in that returns a parsed response at once, so the
figure is the wrapper's own work (span, attributes, metrics, optional content capture), not
the network. Spans go to an exporter that drops them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from openai.types.chat import ChatCompletion
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry
from tests.sdk.integrations._receiver import receiver

import watchkeeper
from watchkeeper.sdk._feedback import flush_feedback
from watchkeeper.sdk._llm import wrap_sync
from watchkeeper.sdk._openai import ChatCompletions

RESPONSE = ChatCompletion.model_validate(
    {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hello there"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 2}},
    }
)  # fmt: skip
MESSAGES = [{"role": "user", "content": "Mail me at jane@example.com please"}]


class Drop(SpanExporter):
    """An exporter that keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def create(**kwargs: Any) -> ChatCompletion:
    return RESPONSE


def per_call_us(fn: Callable[..., Any], n: int = 20_000) -> float:
    """Best of three runs of `n` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(model="gpt-4o-mini", messages=MESSAGES, temperature=0.1)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def main() -> None:
    """Print the figures."""
    wrapped = wrap_sync(create, ChatCompletions())
    print(f"before init: {per_call_us(wrapped):.2f} us/call (bare: {per_call_us(create):.2f})")
    for capture in (False, True):
        watchkeeper.init("bench", span_processor=SimpleSpanProcessor(Drop()), json_logs=False,
                         registry=CollectorRegistry(), capture_content=capture)  # fmt: skip
        print(f"capture_content={capture}: {per_call_us(wrapped):.1f} us/call")
    with receiver() as rx:
        watchkeeper.init("bench", endpoint=rx.url, span_processor=SimpleSpanProcessor(Drop()),
                         json_logs=False, registry=CollectorRegistry())  # fmt: skip
        n, trace_id = 500, "0af7651916cd43dd8448eb211c80319c"
        t0 = time.perf_counter()
        for _ in range(n):
            watchkeeper.feedback(trace_id, 1.0, "thumbs_up")
        submit_us = (time.perf_counter() - t0) / n * 1e6
        flush_feedback(60)
        total = time.perf_counter() - t0
        print(f"feedback(): {submit_us:.1f} us/call in the app thread; "
              f"{len(rx.requests)} delivered in {total:.2f} s")  # fmt: skip
    watchkeeper.shutdown()


if __name__ == "__main__":
    main()
