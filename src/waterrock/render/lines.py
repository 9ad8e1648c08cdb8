"""Lines: every trail drawn as one quad per segment, by shaders/lines.glsl.

The quads' corners are built on the GPU from the segment's two end points in the ring buffer,
so no vertex data is uploaded at all. Two rasterizers fill them, chosen by the scene's
``[render.lines] rasterizer``:

- ``pipeline``: the graphics pipeline, ``4 vertices x (trails * (L-1)) instances`` (the trails
  drawn and their drawn length, all and K unless ``TrailBuffer.set_drawn`` says fewer);
- ``compute``: a compute shader a thread per segment, adding light to fixed-point sums with
  atomics, then one that adds the sums to the light buffer. For GPUs whose graphics pipeline
  is a small part of the chip: an H100 sets up 2 million triangles in 3.9 ms, the quads of a
  million segments (docs/rendering.md). Additive light only; it needs OpenGL 4.3, and falls
  back to the pipeline, with a warning, where the context is older.
"""

from __future__ import annotations

import logging

import moderngl
import numpy as np

from waterrock.render.programs import load_compute, load_program
from waterrock.render.projection import gl_bytes
from waterrock.render.settings import LineSettings, LookSettings
from waterrock.render.trails import TrailBuffer

log = logging.getLogger(__name__)

BLEND = {
    # Premultiplied colour from the shader: additive light, or "over" for an ink-like look.
    "additive": (moderngl.ONE, moderngl.ONE),
    "alpha": (moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA),
}
RESOLVE_TILE = 16  # the resolve's work group is 16 x 16 pixels


class LineLayer:
    def __init__(self, ctx: moderngl.Context, settings: LineSettings, look: LookSettings | None = None):
        self.ctx, self.settings, self.look = ctx, settings, look or LookSettings()
        self.rasterizer = settings.rasterizer
        if self.rasterizer == "compute" and ctx.version_code < 430:
            log.warning("[render.lines] rasterizer = 'compute' needs OpenGL 4.3, this context has %d: "
                        "the graphics pipeline draws the lines", ctx.version_code)
            self.rasterizer = "pipeline"
        if self.rasterizer == "compute":
            self.program = load_compute(ctx, "lines")
            self.resolve = load_compute(ctx, "lines", {"RESOLVE": 1})
            self.vao = None
        else:
            self.program = load_program(ctx, "lines")
            self.vao = ctx.vertex_array(self.program, [])
        self._sums: list[moderngl.Texture] = []
        self.apply(settings, self.look)

    def apply(self, settings: LineSettings, look: LookSettings | None = None) -> None:
        """Draw with ``settings`` (and ``look``; None: the one drawn now) from now on: colours,
        widths, opacities, taper, fade, the weights of packing and impact and the blend are
        uniforms and a blend function (the operator's console sets them while the water runs).
        The rasterizer is the one the layer was made with: it needs other programs."""
        if settings.rasterizer != self.settings.rasterizer:
            raise ValueError(f"the lines' rasterizer is {self.settings.rasterizer!r} until the renderer is made anew")
        self.settings = s = settings
        self.look = k = look or self.look
        p = self.program
        p["color_slow"].value = s.color
        p["color_fast"].value = s.color_fast
        p["width"].value = (s.width_slow, s.width)
        p["opacity"].value = (s.opacity_slow, s.opacity)
        p["fast_speed"].value = s.fast_speed
        p["taper"].value = s.taper
        p["fade"].value = s.fade
        p["look_packing"].value = k.packing
        p["packed_range"].value = (k.loose, k.packed)
        p["look_impact"].value = k.impact
        p["impact_accel"].value = k.impact_accel
        p["impact_color"].value = k.impact_color
        p["impact_tint"].value = k.impact_tint

    def dim(self, factor: float) -> None:
        """Draw the lines at ``factor`` of their opacity (1: as the settings say): a render node's
        last picture fading while no frame comes."""
        s = self.settings
        self.program["opacity"].value = (s.opacity_slow * factor, s.opacity * factor)

    def draw(
        self, trails: TrailBuffer, flatten: np.ndarray, viewport: tuple[int, int], depth_bias: float = 0.0,
        light: moderngl.Texture | None = None, rock_depth: moderngl.Texture | None = None,
    ) -> None:
        """Add the trails' light to the bound framebuffer (the pipeline, whose depth test is the
        caller's) or to ``light``, tested against ``rock_depth`` where given (compute)."""
        if trails.segments == 0:
            return
        p = self.program
        trails.bind(p)
        p["flatten"].write(gl_bytes(flatten))
        p["depth_bias"].value = depth_bias
        p["viewport"].value = (float(viewport[0]), float(viewport[1]))
        p["px"].value = viewport[1] / 1080.0
        if self.rasterizer == "compute":
            self._draw_compute(trails, viewport, light, rock_depth)
            return
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = BLEND[self.settings.blend]
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=trails.segments)
        self.ctx.disable(moderngl.BLEND)

    def _draw_compute(self, trails: TrailBuffer, viewport: tuple[int, int], light: moderngl.Texture | None,
                      rock_depth: moderngl.Texture | None) -> None:
        if light is None:
            raise ValueError("the compute rasterizer adds to a light texture: pass light=")
        size = (int(viewport[0]), int(viewport[1]))
        if not self._sums or self._sums[0].size != size:
            self._release_sums()
            zeros = np.zeros(size[::-1], np.uint32)  # after this, the resolve clears them
            self._sums = [self.ctx.texture(size, 1, data=zeros, dtype="u4") for _ in range(3)]
        for unit, sums in enumerate(self._sums):
            sums.bind_to_image(unit, read=True, write=True)
        p = self.program
        p["segments"].value = trails.segments
        p["occlude"].value = rock_depth is not None
        if rock_depth is not None:
            rock_depth.use(2)
            p["rock_depth"].value = 2
        p.run((trails.segments + 63) // 64)
        self.ctx.memory_barrier()
        light.bind_to_image(3, read=True, write=True)
        self.resolve.run((size[0] + RESOLVE_TILE - 1) // RESOLVE_TILE, (size[1] + RESOLVE_TILE - 1) // RESOLVE_TILE)
        self.ctx.memory_barrier()

    def _release_sums(self) -> None:
        for t in self._sums:
            t.release()
        self._sums = []

    def release(self) -> None:
        self._release_sums()
        if self.vao is not None:
            self.vao.release()
        else:
            self.resolve.release()
        self.program.release()
