"""`context`: user, session and metadata on every span beneath, across awaits and tasks."""

from __future__ import annotations

import asyncio

import watchkeeper
from watchkeeper.model import conventions as c

from .conftest import Sdk


def test_context_attributes_reach_every_span_beneath(sdk: Sdk) -> None:
    ctx = watchkeeper.context(user_id="u1", session_id="s1", feature="rag", tier="pro")
    with ctx, watchkeeper.observe("outer"), watchkeeper.observe("inner"):
        pass
    with watchkeeper.observe("outside"):
        pass
    for name in ("outer", "inner"):
        attrs = sdk.span(name).attributes or {}
        assert attrs[c.USER_ID] == "u1"
        assert attrs[c.SESSION_ID] == "s1"
        assert attrs[c.WK_FEATURE] == "rag"
        assert attrs["watchkeeper.metadata.tier"] == "pro"
    assert c.USER_ID not in (sdk.span("outside").attributes or {})


def test_nested_contexts_merge_and_restore(sdk: Sdk) -> None:
    with watchkeeper.context(user_id="u1", session_id="s1"):
        with watchkeeper.context(user_id="u2"), watchkeeper.observe("nested"):
            pass
        with watchkeeper.observe("after"):
            pass
    nested, after = sdk.span("nested").attributes or {}, sdk.span("after").attributes or {}
    assert (nested[c.USER_ID], nested[c.SESSION_ID]) == ("u2", "s1")
    assert (after[c.USER_ID], after[c.SESSION_ID]) == ("u1", "s1")


async def test_async_context_is_per_task(sdk: Sdk) -> None:
    async def handle(user: str) -> None:
        async with watchkeeper.context(user_id=user):
            await asyncio.sleep(0.01)
            async with watchkeeper.observe(f"req-{user}"):
                await asyncio.sleep(0)

    await asyncio.gather(*(handle(f"u{i}") for i in range(5)))
    for i in range(5):
        assert sdk.span(f"req-u{i}").attributes[c.USER_ID] == f"u{i}"  # type: ignore[index]
