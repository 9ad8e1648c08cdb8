"""The renderer facade: snapshots in, a flattened picture of water lines over the rock out.

Per frame: ``update(snapshot)`` moves the trails on by one position, ``render(framebuffer)``
draws the rock's silhouette and the lines into a floating-point light buffer, then composes
that onto the given framebuffer (a window's ``ctx.screen`` or an :class:`OffscreenTarget`).

A frame-rate governor trades looks for time with ``set_quality``: the light buffer drawn at a
fraction of the output's size and upsampled by the compose pass, shorter trails, fewer trails.
Each is a uniform, an instance count or (the scale) a new light buffer: nothing of the trails'
history is lost, and undoing it gives back the full picture at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import moderngl
import numpy as np
import trimesh

from waterrock.render.lines import LineLayer
from waterrock.render.programs import load_program
from waterrock.render.projection import flattening, view_basis
from waterrock.render.rock import RockLayer
from waterrock.render.settings import RenderSettings
from waterrock.render.target import read_rgb
from waterrock.render.trails import TrailBuffer
from waterrock.snapshots import ParticleSnapshot


@dataclass(frozen=True)
class Quality:
    """What the renderer draws (``Renderer.set_quality``): at full quality (1, K, 1)."""

    scale: float  # the light buffer's size over the output's, 0.25..1
    length: int   # the newest positions drawn of each trail, 2..K
    share: float  # the part of the scene's trails drawn, (0, 1]


class Renderer:
    def __init__(
        self,
        ctx: moderngl.Context,
        settings: RenderSettings,
        size: tuple[int, int] | None = None,
        rock_mesh: trimesh.Trimesh | None = None,
        max_particles: int | None = None,
    ):
        """``max_particles`` is the scene's particle budget (ids lie below it); left out, it is
        taken from the first snapshot and grown, losing the trails once, if a larger id comes."""
        self.ctx, self.settings = ctx, settings
        self.size = tuple(int(v) for v in (size or settings.resolution))
        self.flatten = flattening(settings.projection, self.size)
        self.lines = LineLayer(ctx, settings.lines, settings.look)
        show_rock = rock_mesh is not None and settings.rock.visible
        self.rock = RockLayer(ctx, settings.rock, rock_mesh) if show_rock else None
        self.compose = load_program(ctx, "compose")
        self.compose_vao = ctx.vertex_array(self.compose, [])
        self._compose_scaled: tuple[moderngl.Program, moderngl.VertexArray] | None = None
        self._quality = Quality(1.0, settings.trails.length, 1.0)
        self.trails: TrailBuffer | None = None
        if max_particles is not None:
            self.trails = self._trail_buffer(max_particles)
        self._light = self._light_fbo = None
        self._make_light_buffer()
        self._last: moderngl.Framebuffer | None = None

    def _trail_buffer(self, max_particles: int) -> TrailBuffer:
        t = self.settings.trails
        trails = TrailBuffer(self.ctx, max_particles, t.share, t.length)
        trails.set_drawn(self._quality.length, self._quality.share)
        return trails

    def _make_light_buffer(self) -> None:
        scale = self._quality.scale
        self.light_size = tuple(max(1, round(scale * v)) for v in self.size)
        # Half floats: thousands of faint lines add up without banding or clipping at 1.0.
        self._light = self.ctx.texture(self.light_size, 4, dtype="f2")
        # upsampled bilinearly when smaller than the output, never wrapping round at its edges
        self._light.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._light.repeat_x = self._light.repeat_y = False
        # a texture, which the compute rasterizer reads the rock's depth from
        self._depth = self.ctx.depth_texture(self.light_size)
        self._depth.compare_func = ""
        self._light_fbo = self.ctx.framebuffer([self._light], self._depth)

    def _remake_light_buffer(self) -> None:
        for r in (self._light_fbo, self._light, self._depth):
            r.release()
        self._make_light_buffer()

    def resize(self, size: tuple[int, int]) -> None:
        """Follow a window's new size: a new light buffer and a flattening for the new aspect."""
        self.size = (int(size[0]), int(size[1]))
        self.flatten = flattening(self.settings.projection, self.size)
        self._remake_light_buffer()

    @property
    def quality(self) -> Quality:
        """The scale, trail length and share drawn now (``set_quality``)."""
        return self._quality

    def set_quality(self, scale: float = 1.0, length: int | None = None, share: float = 1.0) -> None:
        """Draw the light buffer at ``scale`` (0.25..1) of the output's size, upsampled to it by
        the compose pass (lines keep their width on screen); only the newest ``length`` positions
        (2..K, None: all K) of each trail; and only ``share`` ((0, 1]) of the scene's trails, the
        particles ``chosen(ids, share * [render.trails] share)`` picks. Cheap enough to call every
        few seconds: the light buffer is made anew only when its size changes, and the trails keep
        every position, so raising them again shows full trails at once."""
        k = self.settings.trails.length
        length = k if length is None else int(length)
        if not 0.25 <= scale <= 1.0:
            raise ValueError(f"a render scale lies in 0.25..1, got {scale}")
        if not 2 <= length <= k:
            raise ValueError(f"a drawn trail length lies in 2..K={k}, got {length}")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"a drawn share of the trails lies in (0, 1], got {share}")
        before = self.light_size
        self._quality = Quality(float(scale), length, float(share))
        if self.trails is not None:
            self.trails.set_drawn(length, share)
        if tuple(max(1, round(scale * v)) for v in self.size) != before:
            self._remake_light_buffer()

    def set_look(self, settings: RenderSettings) -> None:
        """Draw with ``settings`` from the next frame on, as the water runs (the operator's console):
        the background and exposure, the lines' and the rock's look, the flattening; a new trail
        length or share makes the trails anew, so they start again from the water's next frame
        (the drawn length keeps its part of K). The picture's size and the lines' rasterizer stay
        those the renderer was made with, and a rock it was made without stays hidden: those need
        a new renderer (ValueError)."""
        old = self.settings
        if settings.resolution != old.resolution:
            raise ValueError("the picture's resolution is fixed until the renderer is made anew")
        if settings.lines.rasterizer != old.lines.rasterizer:
            raise ValueError("the lines' rasterizer is fixed until the renderer is made anew")
        if settings.rock.visible != old.rock.visible:
            raise ValueError("showing or hiding the rock needs the renderer made anew")
        if settings.trails != old.trails:  # first: the one step that can fail (a ring too large for this GPU)
            q, k = self._quality, settings.trails.length
            quality = Quality(q.scale, max(2, min(round(q.length * k / old.trails.length), k)), q.share)
            trails = self.trails
            self.settings, self._quality = settings, quality
            if trails is not None:
                try:
                    self.trails = self._trail_buffer(trails.max_particles)
                except Exception:
                    self.settings, self._quality = old, q
                    raise
                trails.release()
        if settings.lines != old.lines or settings.look != old.look:
            self.lines.apply(settings.lines, settings.look)
        if self.rock is not None and settings.rock != old.rock:
            self.rock.apply(settings.rock)
        if settings.projection != old.projection:
            self.flatten = flattening(settings.projection, self.size)
        self.settings = settings

    def set_rock(self, rock_mesh: trimesh.Trimesh | None) -> None:
        """Draw ``rock_mesh`` (world space; None: no rock) from the next frame on: the scene's rock
        moved or replaced while the water runs (app/live.py), so the picture shows the rock the
        water now flows over. The layer is made before the old one goes, so a failure keeps it;
        a scene whose rock is hidden (``render.rock.visible``) shows none."""
        layer = None
        if rock_mesh is not None and self.settings.rock.visible:
            layer = RockLayer(self.ctx, self.settings.rock, rock_mesh)
        if self.rock is not None:
            self.rock.release()
        self.rock = layer

    def _compose_program(self) -> tuple[moderngl.Program, moderngl.VertexArray]:
        """The compose pass: a texel per pixel at full scale, bilinear upsampling below it (a
        compiled variant, not a uniform branch: a software renderer runs both sides of those)."""
        if self.light_size == self.size:
            return self.compose, self.compose_vao
        if self._compose_scaled is None:
            program = load_program(self.ctx, "compose", {"SCALED": 1})
            self._compose_scaled = program, self.ctx.vertex_array(program, [])
        program = self._compose_scaled[0]
        program["output_size"].value = (float(self.size[0]), float(self.size[1]))
        return self._compose_scaled

    def _depth_bias(self) -> float:
        """Clip-space z that moves the water ``surface_margin`` metres toward the viewer, so
        particles sliding on the rock (a particle radius off its surface) are not half hidden."""
        p = self.settings.projection
        toward = view_basis(p.azimuth_deg, p.elevation_deg)[2]
        return float(self.flatten[2, :3] @ toward) * self.settings.rock.surface_margin

    def update(self, snapshot: ParticleSnapshot) -> None:
        if len(snapshot):
            top = int(np.max(snapshot.ids)) + 1
            if self.trails is None or top > self.trails.max_particles:
                if self.trails is not None:
                    self.trails.release()
                self.trails = self._trail_buffer(1 << max(10, math.ceil(math.log2(top))))
        if self.trails is not None:
            self.trails.update(snapshot)

    def render(self, framebuffer: moderngl.Framebuffer) -> None:
        ctx, s = self.ctx, self.settings
        self._light_fbo.use()
        # Cleared to the light the compose curve maps to the background colour exactly.
        bg = [-math.log(1.0 - min(c, 0.999)) / s.exposure for c in s.background]
        self._light_fbo.clear(*bg, 0.0, depth=1.0)
        ctx.disable(moderngl.BLEND | moderngl.CULL_FACE)
        if self.rock is not None:
            ctx.enable(moderngl.DEPTH_TEST)
            self.rock.draw(self.flatten, self.light_size)
        if self.trails is not None:
            occlude = self.rock is not None and s.rock.occludes
            (ctx.enable if occlude else ctx.disable)(moderngl.DEPTH_TEST)
            # Lines are light, not surfaces: they never hide each other. (The mask is the
            # framebuffer's in moderngl; the context has none, and setting one there did nothing.)
            self._light_fbo.depth_mask = False
            self.lines.draw(self.trails, self.flatten, self.light_size, self._depth_bias(), light=self._light,
                            rock_depth=self._depth if occlude else None)
            self._light_fbo.depth_mask = True
        ctx.disable(moderngl.DEPTH_TEST)

        framebuffer.use()
        framebuffer.viewport = (0, 0, *self.size)
        self._light.use(0)
        compose, vao = self._compose_program()
        compose["light"].value = 0
        compose["exposure"].value = s.exposure
        vao.render(moderngl.TRIANGLES, vertices=3)
        self._last = framebuffer

    def compose_into(self, framebuffer: moderngl.Framebuffer, size: tuple[int, int], program: moderngl.Program,
                     vao: moderngl.VertexArray) -> None:
        """The last frame's light composed again into ``framebuffer`` of ``size``, apart from the
        frame (a thumbnail, a live video out), by ``program``, the compose pass's SCALED variant
        (bilinear); the framebuffer bound before is bound again."""
        previous = self.ctx.fbo  # None before the context's first framebuffer: each draw binds its own
        framebuffer.use()
        # cleared to nothing, so whatever blending the last draw left on adds nothing to it
        framebuffer.clear(0.0, 0.0, 0.0, 0.0)
        self._light.use(0)  # remade when the governor changes the scale: the current one
        program["light"].value = 0
        program["exposure"].value = float(self.settings.exposure)
        program["output_size"].value = (float(size[0]), float(size[1]))
        vao.render(moderngl.TRIANGLES, vertices=3)
        if previous is not None:
            previous.use()

    @property
    def light(self) -> moderngl.Texture:
        """The last frame's light buffer (half floats, before the compose curve): for a thumbnail
        composed apart, at a size of its own (app/status.py)."""
        return self._light

    def read_pixels(self) -> np.ndarray:
        """The last rendered picture: (H, W, 3) uint8, row 0 at the top."""
        if self._last is None:
            raise RuntimeError("nothing rendered yet: call render(framebuffer) first")
        return read_rgb(self._last, self.size)

    def release(self) -> None:
        for r in (self.lines, self.rock, self.trails):
            if r is not None:
                r.release()
        for r in (self.compose_vao, self.compose, *(self._compose_scaled or ()), self._light_fbo, self._light,
                  self._depth):
            r.release()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
