"""The rock: its mesh drawn as a dark flat silhouette with iso-height contour lines."""

from __future__ import annotations

import math

import moderngl
import numpy as np
import trimesh

from waterrock.render.programs import load_program
from waterrock.render.projection import gl_bytes
from waterrock.render.settings import RockSettings


def placed_rock(mesh: trimesh.Trimesh, translate, rotate_deg, scale: float) -> trimesh.Trimesh:
    """The scene's rock in world space: scaled, rotated about x, y, z in that order, then moved
    (the order of scene.Rock's fields)."""
    m = trimesh.transformations.scale_matrix(scale)
    for axis, deg in zip(np.eye(3), rotate_deg, strict=True):
        m = trimesh.transformations.rotation_matrix(math.radians(deg), axis) @ m
    m = trimesh.transformations.translation_matrix(translate) @ m
    placed = mesh.copy()
    placed.apply_transform(m)
    return placed


class RockLayer:
    def __init__(self, ctx: moderngl.Context, settings: RockSettings, mesh: trimesh.Trimesh):
        self.ctx, self.settings = ctx, settings
        self.program = load_program(ctx, "rock")
        self.vbo = ctx.buffer(np.ascontiguousarray(mesh.vertices, dtype=np.float32))
        self.ibo = ctx.buffer(np.ascontiguousarray(mesh.faces, dtype=np.int32))
        self.vao = ctx.vertex_array(self.program, [(self.vbo, "3f", "in_position")], self.ibo)
        self.apply(settings)

    def apply(self, settings: RockSettings) -> None:
        """Draw with ``settings``' colours and contours from now on (uniforms: set while running)."""
        self.settings = s = settings
        p = self.program
        p["color"].value = s.color
        p["contour_color"].value = s.contour_color
        p["contour_spacing"].value = s.contour_spacing
        self._contour_width = s.contour_width

    def draw(self, flatten: np.ndarray, viewport: tuple[int, int]) -> None:
        self.program["flatten"].write(gl_bytes(flatten))
        self.program["contour_width"].value = self._contour_width * viewport[1] / 1080.0
        self.vao.render(moderngl.TRIANGLES)

    def release(self) -> None:
        for r in (self.vao, self.ibo, self.vbo, self.program):
            r.release()
