"""What the Alertmanager export reads from the engine's routes, as read-only protocols.

Rules and SLOs are read as the models themselves (`alerting._model`); routes stay protocols
because the configuration module imports the rule kinds, which import the exporters' PromQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MatcherInput(Protocol):
    """A label matcher: name, operator (`=`, `!=`, `=~`, `!~`) and value."""

    @property
    def name(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def value(self) -> str: ...


class RouteInput(Protocol):
    """A notification route of the engine: matching alerts go to these channels."""

    @property
    def matchers(self) -> Sequence[MatcherInput]: ...
    @property
    def channels(self) -> Sequence[str]: ...
    @property
    def continue_(self) -> bool: ...
