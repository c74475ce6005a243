"""Fake OpenAI and Anthropic servers (real HTTP on 127.0.0.1) for the wrapper tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from watchkeeper.demo.fake_providers import FakeServer, fake_anthropic, fake_openai


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeServer]:
    """A fake OpenAI API; clients use `base_url=server.url + "/v1"`."""
    with fake_openai() as server:
        yield server


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeServer]:
    """A fake Anthropic API; clients use `base_url=server.url`."""
    with fake_anthropic() as server:
        yield server
