"""Calibrating the projectors: the corner pins of each output, moved by mouse and keyboard.

The editor holds the outputs being calibrated and what the operator is doing to one of them
(which corner is picked, which is being dragged); it knows nothing of windows, so the window
code turns keys and clicks into these calls, and the tests drive it directly. ``save()`` writes
the outputs into the scene file's ``[projection]`` section (``scene.save_projection``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from waterrock.scene import IDENTITY_CORNERS, ProjectionOutputs, ProjectorOutput, save_projection

log = logging.getLogger(__name__)

CORNER_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")
DIGITS = 6  # corners are kept to a millionth of the output: well under a pixel, and short in the file


class WarpEditor:
    """Edits the corners of ``projection``'s outputs; ``active`` is the output being edited
    (None: not editing). Moves that would fold the quad (not convex) are refused."""

    def __init__(self, projection: ProjectionOutputs, scene_path: Path | None):
        self.projection = projection
        self.scene_path = scene_path
        self.active: int | None = None
        self.corner = 0
        self.dragging = False
        self._saved = projection
        self.dirty = False

    @property
    def outputs(self) -> list[ProjectorOutput]:
        return self.projection.outputs

    # --- entering and leaving -------------------------------------------------------------------

    def begin(self, output: int) -> None:
        self.active, self.corner, self.dragging = output, 0, False
        log.info("warp edit: output %d (monitor %d)", output, self.outputs[output].monitor)

    def finish(self) -> bool:
        """Leave editing, saving any change; False if it could not be saved."""
        ok = self.save() if self.dirty else True
        self.active, self.dragging = None, False
        return ok

    def cancel(self) -> None:
        """Leave editing and go back to the corners last saved."""
        self.projection, self.dirty = self._saved, False
        self.active, self.dragging = None, False
        log.info("warp edit cancelled: corners as last saved")

    # --- moving corners -------------------------------------------------------------------------

    def _set_corners(self, corners) -> bool:
        i = self.active
        if i is None:
            return False
        rounded = tuple((round(float(x), DIGITS), round(float(y), DIGITS)) for x, y in corners)
        try:
            out = self.outputs[i].model_copy(update={"corners": rounded})
            out = ProjectorOutput.model_validate(out.model_dump())  # convex, in range
        except ValueError:
            return False  # the move would fold or fling the picture: refused, the corner stays
        outputs = list(self.outputs)
        outputs[i] = out
        self.projection = self.projection.model_copy(update={"outputs": outputs})
        self.dirty = True
        return True

    def next_corner(self, step: int = 1) -> None:
        self.corner = (self.corner + step) % 4

    def nudge(self, dx_px: float, dy_px: float, size: tuple[int, int]) -> bool:
        """Move the picked corner by (dx, dy) pixels of an output ``size`` (w, h) pixels large."""
        if self.active is None:
            return False
        c = np.array(self.outputs[self.active].corners, np.float64)
        c[self.corner] += (dx_px / size[0], dy_px / size[1])
        return self._set_corners(c)

    def grab(self, x: float, y: float) -> None:
        """A press at output share (x, y): picks the nearest corner and starts dragging it there."""
        if self.active is None:
            return
        c = np.array(self.outputs[self.active].corners, np.float64)
        self.corner = int(np.argmin(np.hypot(c[:, 0] - x, c[:, 1] - y)))
        self.dragging = True
        self.drag(x, y)

    def drag(self, x: float, y: float) -> None:
        if self.active is None or not self.dragging:
            return
        c = np.array(self.outputs[self.active].corners, np.float64)
        c[self.corner] = (x, y)
        self._set_corners(c)

    def release(self) -> None:
        self.dragging = False

    def reset(self) -> None:
        """The active output's picture back to filling the output."""
        self._set_corners(IDENTITY_CORNERS)

    # --- saving ---------------------------------------------------------------------------------

    def save(self) -> bool:
        if self.scene_path is None:
            log.error("warp not saved: the scene was not read from a file")
            return False
        try:
            save_projection(self.scene_path, self.projection)
        except (OSError, ValueError) as err:  # SceneError, and a file torn or not UTF-8 on disk: not the show
            log.error("warp not saved to %s: %s", self.scene_path, err)
            return False
        self._saved, self.dirty = self.projection, False
        log.info("warp saved to %s", self.scene_path)
        print(f"warp saved: {self.scene_path}", flush=True)
        return True

    def status(self) -> str:
        if self.active is None:
            return ""
        out = self.outputs[self.active]
        x, y = out.corners[self.corner]
        return (
            f"warp edit: output {self.active} (monitor {out.monitor}), corner {CORNER_NAMES[self.corner]} "
            f"at ({x:.4f}, {y:.4f}){'  *unsaved' if self.dirty else ''}"
        )


EDIT_HELP = [
    "warp edit",
    "  Tab / Shift+Tab  pick a corner",
    "  arrows           nudge 1 px (Shift: 10 px)",
    "  drag             move the nearest corner",
    "  Backspace        reset this output",
    "  Ctrl+S           save into the scene",
    "  W, Enter         save and leave",
    "  Esc              leave, back to last saved",
    "  Q                save, leave and quit",
]
