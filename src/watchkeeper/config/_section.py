"""The base of every configuration section: unknown keys refused, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A section of the configuration (or a part of one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
