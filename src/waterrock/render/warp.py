"""The projector pass: corner-pin warp and edge blending (``shaders/warp.glsl``).

A projector rarely meets its wall square on: the operator drags the four corners of its picture
to where they belong on the wall, and the homography from the unit square to those corners
(a corner pin) bends the picture to match. Where two projectors overlap, each one's light fades
out across the overlap (Bourke, "Edge blending using commodity projectors", 2004): the curve
``f`` rises from 0 to 1 with ``f(x) + f(1 - x) = 1``, and the pixel value is ``f ** (1/gamma)``
so that, after the projector's gamma, the two lights add up to one.

A grid warp touches up what the four corners cannot (a wall that is not flat, a lens that is not
quite a pinhole): control points spread evenly over the output, each moved by an offset, and a
Catmull-Rom spline through the offsets (Catmull & Rom 1974; as a mesh warp, Wolberg, "Digital
Image Warping", 1990, ch. 7) carries the picture along between them. It applies after the corner
pin or after the projection onto the rock (``render/onrock.py``).

Coordinates are shares of a width or height from the top-left corner, y down; corners are listed
top-left, top-right, bottom-right, bottom-left (``ProjectorOutput`` in ``scene.py``).
"""

from __future__ import annotations

import cv2
import moderngl
import numpy as np

from waterrock.render.programs import load_program
from waterrock.scene import EdgeBlend, ProjectorOutput

MAX_GRID_POINTS = 64  # 8 x 8, the largest grid_shape a scene may set: warp.glsl's grid[64]
UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def corner_homography(corners) -> np.ndarray:
    """The 3x3 homography taking the unit square's corners (top-left, top-right, bottom-right,
    bottom-left) to ``corners``; normalised so that its last entry is 1."""
    dst = np.asarray(corners, np.float64).reshape(4, 2)
    h = cv2.getPerspectiveTransform(UNIT_SQUARE.astype(np.float32), dst.astype(np.float32))
    return h / h[2, 2]


def apply_homography(h: np.ndarray, points) -> np.ndarray:
    """``points`` (N, 2) through ``h``: (N, 2)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    q = np.column_stack([p, np.ones(len(p))]) @ np.asarray(h, np.float64).T
    return q[:, :2] / q[:, 2:3]


def inverse_homography(h: np.ndarray, corners) -> np.ndarray:
    """The inverse of ``h``, signed so that points inside the quad have a positive w (the shader
    shows nothing where w <= 0: the part of the plane that the warp folds behind the horizon)."""
    inv = np.linalg.inv(np.asarray(h, np.float64))
    centre = np.append(np.mean(np.asarray(corners, np.float64).reshape(4, 2), axis=0), 1.0)
    return inv if (inv @ centre)[2] > 0 else -inv


def catmull_rom_weights(t) -> np.ndarray:
    """The four Catmull-Rom weights (N, 4) of the control points around a span at ``t`` along it."""
    t = np.asarray(t, np.float64)[..., None]
    return 0.5 * np.concatenate(
        [-t**3 + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2, -3 * t**3 + 4 * t**2 + t, t**3 - t**2], axis=-1
    )


def grid_offset(grid, grid_shape, points) -> np.ndarray:
    """The grid warp's offset (N, 2) at output shares ``points`` (N, 2): the Catmull-Rom spline
    through the control points' offsets ``grid`` (row by row from the top-left, ``grid_shape`` =
    (cols, rows) points evenly spread over the output, its edges included), the end points
    repeated past the edges. What warp.glsl's grid_offset() computes; zero for an empty grid."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if len(grid) == 0:
        return np.zeros_like(p)
    cols, rows = grid_shape
    offsets = np.asarray(grid, np.float64).reshape(rows, cols, 2)
    g = np.clip(p, 0.0, 1.0) * (cols - 1, rows - 1)
    cell = np.minimum(np.floor(g).astype(int), (cols - 2, rows - 2))
    t = g - cell
    wx, wy = catmull_rom_weights(t[:, 0]), catmull_rom_weights(t[:, 1])
    out = np.zeros_like(p)
    for j in range(4):
        rj = np.clip(cell[:, 1] + j - 1, 0, rows - 1)
        for i in range(4):
            ci = np.clip(cell[:, 0] + i - 1, 0, cols - 1)
            out += (wy[:, j] * wx[:, i])[:, None] * offsets[rj, ci]
    return out


def grid_points(grid_shape) -> np.ndarray:
    """Where the control points sit before their offsets: (cols * rows, 2) output shares."""
    cols, rows = grid_shape
    x, y = np.meshgrid(np.linspace(0.0, 1.0, cols), np.linspace(0.0, 1.0, rows))
    return np.column_stack([x.ravel(), y.ravel()])


def blend_curve(x, power: float = 2.0) -> np.ndarray:
    """Bourke's ramp on [0, 1]: 0 at the outer edge, 1 at the inner end, f(x) + f(1 - x) = 1."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return np.where(x < 0.5, 0.5 * (2.0 * x) ** power, 1.0 - 0.5 * (2.0 * (1.0 - x)) ** power)


def blend_light(u, v, blend: EdgeBlend) -> np.ndarray:
    """The share of light an output gives at region point (u, v): the product of its edges' ramps."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    light = np.ones(np.broadcast(u, v).shape)
    for distance, width in ((u, blend.left), (1.0 - u, blend.right), (v, blend.top), (1.0 - v, blend.bottom)):
        if width > 0:
            light = light * blend_curve(distance / width, blend.power)
    return light


def blend_value(u, v, blend: EdgeBlend) -> np.ndarray:
    """The pixel multiplier the shader applies: the light share through the inverse gamma."""
    return blend_light(u, v, blend) ** (1.0 / blend.gamma)


class WarpPass:
    """Draws a picture texture through one output's warp and blend onto a framebuffer.

    Vertex arrays belong to one OpenGL context: make one WarpPass per output window, with that
    window's context current (the picture texture is shared between the contexts)."""

    def __init__(self, ctx: moderngl.Context):
        self.ctx = ctx
        self.program = load_program(ctx, "warp")
        self.vao = ctx.vertex_array(self.program, [])
        self._grid: tuple[moderngl.Program, moderngl.VertexArray] | None = None  # made when first needed

    def _grid_variant(self) -> tuple[moderngl.Program, moderngl.VertexArray]:
        if self._grid is None:
            prog = load_program(self.ctx, "warp", defines={"GRID": 1})
            self._grid = (prog, self.ctx.vertex_array(prog, []))
        return self._grid

    def draw(
        self,
        framebuffer: moderngl.Framebuffer,
        size: tuple[int, int],
        picture: moderngl.Texture,
        output: ProjectorOutput,
        edit: bool = False,
        selected: int = -1,
        grid_selected: int = -1,
        corner_guides: bool = True,
    ) -> None:
        """``picture`` through ``output``'s warp and blend onto ``framebuffer`` (``size`` pixels).
        In ``edit`` mode the guides show: the corners' rings (unless ``corner_guides`` is off), the
        ``selected`` corner filled; the grid's control points, when the output has a grid or one
        is being edited (``grid_selected`` >= 0, that point filled)."""
        with_grid = bool(output.grid) or (edit and grid_selected >= 0)
        prog, vao = self._grid_variant() if with_grid else (self.program, self.vao)
        h = corner_homography(output.corners)
        inv = inverse_homography(h, output.corners)
        framebuffer.use()
        framebuffer.viewport = (0, 0, int(size[0]), int(size[1]))
        self.ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        picture.use(0)
        prog["picture"].value = 0
        prog["out_size"].value = (float(size[0]), float(size[1]))
        prog["inverse"].write(inv.T.astype(np.float32).tobytes())  # GLSL matrices are column-major
        prog["region"].value = tuple(float(x) for x in output.region)
        b = output.blend
        prog["blend"].value = (b.left, b.right, b.top, b.bottom)
        prog["gamma"].value = b.gamma
        prog["power"].value = b.power
        prog["edit"].value = bool(edit)
        prog["corners"].write(np.asarray(output.corners, np.float32).tobytes())
        prog["selected"].value = int(selected)
        prog["corner_guides"].value = bool(corner_guides)
        if with_grid:
            cols, rows = output.grid_shape
            prog["grid_shape"].value = (int(cols), int(rows))
            grid = np.zeros((MAX_GRID_POINTS, 2), np.float32)  # the uniform array is written whole
            grid[: len(output.grid)] = output.grid
            prog["grid"].write(grid.tobytes())
            prog["grid_selected"].value = int(grid_selected)
        vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        for prog, vao in [(self.program, self.vao), *([self._grid] if self._grid else [])]:
            vao.release()
            prog.release()
