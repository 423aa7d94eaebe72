"""The base of every settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: unknown keys and non-finite numbers are errors."""

    # Unknown keys are almost always typos in a config file: reject them instead of ignoring them.
    # No setting means anything at infinity or NaN: every float must be finite.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
