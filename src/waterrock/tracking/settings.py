"""The scene's [tracking] section: where visitors come from and how they become obstacles."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class TrackingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    source: Literal["none", "synthetic"] = "synthetic"

    def resolved(self, base: Path) -> TrackingSettings:
        """A copy with relative paths made absolute against the scene file's folder."""
        return self
