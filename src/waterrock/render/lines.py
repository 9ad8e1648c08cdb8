"""Lines: every trail drawn as instanced quads, one per segment, by shaders/lines.glsl.

The vertex shader builds each quad from the segment's two end points in the ring buffer, so no
vertex data is uploaded at all: the draw call is ``4 vertices x (trails * (K-1)) instances``.
"""

from __future__ import annotations

import moderngl
import numpy as np

from waterrock.render.programs import load_program
from waterrock.render.projection import gl_bytes
from waterrock.render.settings import LineSettings
from waterrock.render.trails import TrailBuffer

BLEND = {
    # Premultiplied colour from the shader: additive light, or "over" for an ink-like look.
    "additive": (moderngl.ONE, moderngl.ONE),
    "alpha": (moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA),
}


class LineLayer:
    def __init__(self, ctx: moderngl.Context, settings: LineSettings):
        self.ctx, self.settings = ctx, settings
        self.program = load_program(ctx, "lines")
        self.vao = ctx.vertex_array(self.program, [])
        s, p = settings, self.program
        p["color_slow"].value = s.color
        p["color_fast"].value = s.color_fast
        p["width"].value = (s.width_slow, s.width)
        p["opacity"].value = (s.opacity_slow, s.opacity)
        p["fast_speed"].value = s.fast_speed
        p["taper"].value = s.taper
        p["fade"].value = s.fade

    def draw(
        self, trails: TrailBuffer, flatten: np.ndarray, viewport: tuple[int, int], depth_bias: float = 0.0
    ) -> None:
        if trails.segments == 0:
            return
        p = self.program
        trails.bind(p)
        p["flatten"].write(gl_bytes(flatten))
        p["depth_bias"].value = depth_bias
        p["viewport"].value = (float(viewport[0]), float(viewport[1]))
        p["px"].value = viewport[1] / 1080.0
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = BLEND[self.settings.blend]
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=trails.segments)
        self.ctx.disable(moderngl.BLEND)

    def release(self) -> None:
        self.vao.release()
        self.program.release()
