"""The scene's [render] section: trails, lines, colours and the flattening projection."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class RenderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def resolved(self, base: Path) -> RenderSettings:
        """A copy with relative paths made absolute against the scene file's folder."""
        return self
