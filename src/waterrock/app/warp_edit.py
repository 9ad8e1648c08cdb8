"""Calibrating the projectors: the corner pins of each output and its grid warp's control
points, moved by mouse and keyboard.

The editor holds the outputs being calibrated and what the operator is doing to one of them
(corners or grid points, which one is picked, which is being dragged); it knows nothing of
windows, so the window code turns keys and clicks into these calls, and the tests drive it
directly. An output that renders on the rock from its calibrated projector has no corner pin to
edit, only its grid. ``save()`` writes the outputs into the scene file's ``[projection]`` section
(``scene.save_projection``): corners and ``grid = [...]`` alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from waterrock.render.warp import grid_points
from waterrock.scene import IDENTITY_CORNERS, ProjectionOutputs, ProjectorOutput, save_projection

log = logging.getLogger(__name__)

CORNER_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")
DIGITS = 6  # corners and offsets are kept to a millionth of the output: well under a pixel, and short in the file


class WarpEditor:
    """Edits the corners and grids of ``projection``'s outputs; ``active`` is the output being
    edited (None: not editing), ``grid_mode`` whether its grid points rather than its corners are
    moved (``point`` the picked one). Moves that would fold the quad (not convex) or push a grid
    point past the scene's bound are refused. The outputs in ``on_rock`` render on the rock:
    only their grid is edited."""

    def __init__(self, projection: ProjectionOutputs, scene_path: Path | None, on_rock: Iterable[int] = ()):
        self.projection = projection
        self.scene_path = scene_path
        self.on_rock = frozenset(on_rock)
        self.active: int | None = None
        self.corner = 0
        self.point = 0
        self.grid_mode = False
        self.dragging = False
        self._saved = projection
        self.dirty = False

    @property
    def outputs(self) -> list[ProjectorOutput]:
        return self.projection.outputs

    # --- entering and leaving -------------------------------------------------------------------

    def begin(self, output: int) -> None:
        self.active, self.corner, self.point, self.dragging = output, 0, 0, False
        self.grid_mode = output in self.on_rock
        log.info("warp edit: output %d (monitor %d)%s", output, self.outputs[output].monitor,
                 ", on the rock: its grid" if self.grid_mode else "")

    def toggle_grid(self) -> None:
        """Switch between moving the corners and moving the grid's control points."""
        if self.active is None:
            return
        if self.active in self.on_rock:
            log.info("warp edit: output %d renders on the rock, which sets its shape: only its grid is edited",
                     self.active)
            return
        self.grid_mode, self.dragging = not self.grid_mode, False

    def finish(self) -> bool:
        """Leave editing, saving any change; False if it could not be saved."""
        ok = self.save() if self.dirty else True
        self.active, self.dragging = None, False
        return ok

    def cancel(self) -> None:
        """Leave editing and go back to the warp last saved."""
        self.projection, self.dirty = self._saved, False
        self.active, self.dragging = None, False
        log.info("warp edit cancelled: warp as last saved")

    # --- moving corners and grid points -------------------------------------------------------

    def _set_corners(self, corners) -> bool:
        rounded = tuple((round(float(x), DIGITS), round(float(y), DIGITS)) for x, y in corners)
        return self._update({"corners": rounded})

    def _set_grid(self, offsets) -> bool:
        rounded = [(round(float(x), DIGITS), round(float(y), DIGITS)) for x, y in offsets]
        # all at rest is no grid: the output takes the plain path and the file stays short
        return self._update({"grid": [] if not np.any(rounded) else rounded})

    def _update(self, change: dict) -> bool:
        i = self.active
        if i is None:
            return False
        try:
            out = self.outputs[i].model_copy(update=change)
            out = ProjectorOutput.model_validate(out.model_dump())  # convex, in range
        except ValueError:
            return False  # the move would fold or fling the picture: refused, the point stays
        outputs = list(self.outputs)
        outputs[i] = out
        self.projection = self.projection.model_copy(update={"outputs": outputs})
        self.dirty = True
        return True

    def next_corner(self, step: int = 1) -> None:
        self.corner = (self.corner + step) % 4

    def next_point(self, step: int = 1) -> None:
        """Pick the next corner, or the next grid point (row by row) in grid mode."""
        if self.active is not None and self.grid_mode:
            cols, rows = self.outputs[self.active].grid_shape
            self.point = (self.point + step) % (cols * rows)
        else:
            self.next_corner(step)

    def _offsets(self) -> np.ndarray:
        """The active output's grid offsets, (cols * rows, 2); zeros for no grid yet."""
        out = self.outputs[self.active]
        cols, rows = out.grid_shape
        return np.array(out.grid, np.float64).reshape(-1, 2) if out.grid else np.zeros((cols * rows, 2))

    def _points(self) -> np.ndarray:
        """Where the corners, or the grid points in grid mode, are now: output shares."""
        out = self.outputs[self.active]
        if self.grid_mode:
            return grid_points(out.grid_shape) + self._offsets()
        return np.array(out.corners, np.float64)

    def selected_point(self) -> tuple[float, float]:
        """Where the picked corner or grid point is, output shares ((0.5, 0.5) when not editing)."""
        if self.active is None:
            return 0.5, 0.5
        x, y = self._points()[self.point if self.grid_mode else self.corner]
        return float(x), float(y)

    def nudge(self, dx_px: float, dy_px: float, size: tuple[int, int]) -> bool:
        """Move the picked corner or grid point by (dx, dy) pixels of an output ``size`` (w, h)
        pixels large."""
        if self.active is None:
            return False
        step = (dx_px / size[0], dy_px / size[1])
        if self.grid_mode:
            g = self._offsets()
            g[self.point] += step
            return self._set_grid(g)
        c = np.array(self.outputs[self.active].corners, np.float64)
        c[self.corner] += step
        return self._set_corners(c)

    def grab(self, x: float, y: float) -> None:
        """A press at output share (x, y): picks the nearest corner (grid point) and starts
        dragging it there."""
        if self.active is None:
            return
        c = self._points()
        nearest = int(np.argmin(np.hypot(c[:, 0] - x, c[:, 1] - y)))
        if self.grid_mode:
            self.point = nearest
        else:
            self.corner = nearest
        self.dragging = True
        self.drag(x, y)

    def drag(self, x: float, y: float) -> None:
        if self.active is None or not self.dragging:
            return
        if self.grid_mode:
            g = self._offsets()
            g[self.point] = np.array([x, y]) - grid_points(self.outputs[self.active].grid_shape)[self.point]
            self._set_grid(g)
            return
        c = np.array(self.outputs[self.active].corners, np.float64)
        c[self.corner] = (x, y)
        self._set_corners(c)

    def release(self) -> None:
        self.dragging = False

    def reset(self) -> None:
        """The active output's picture back to filling the output; in grid mode, its grid back
        to none."""
        if self.grid_mode:
            self._set_grid([])
        else:
            self._set_corners(IDENTITY_CORNERS)

    # --- saving ---------------------------------------------------------------------------------

    def save(self) -> bool:
        if self.scene_path is None:
            log.error("warp not saved: the scene was not read from a file")
            return False
        try:
            save_projection(self.scene_path, self.projection)
        except (OSError, ValueError, TypeError) as err:  # SceneError, a file torn or not UTF-8 on disk,
            # a value the section writer cannot write: none of them may stop the show
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
        unsaved = "  *unsaved" if self.dirty else ""
        where = f"warp edit: output {self.active} (monitor {out.monitor})"
        if self.grid_mode:
            cols, _ = out.grid_shape
            dx, dy = self._offsets()[self.point]
            return (f"{where}, grid point {self.point % cols + 1},{self.point // cols + 1} "
                    f"moved by ({dx:+.4f}, {dy:+.4f}){unsaved}")
        x, y = out.corners[self.corner]
        return f"{where}, corner {CORNER_NAMES[self.corner]} at ({x:.4f}, {y:.4f}){unsaved}"


EDIT_HELP = [
    "warp edit",
    "  G                corners / grid points",
    "  Tab / Shift+Tab  pick a corner (grid point)",
    "  arrows           nudge 1 px (Shift: 10 px)",
    "  drag             move the nearest corner (grid point)",
    "  Backspace        reset the corners (the grid)",
    "  Ctrl+S           save into the scene",
    "  W, Enter         save and leave",
    "  Esc              leave, back to last saved",
    "  Q                save, leave and quit",
]
