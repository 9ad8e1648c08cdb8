"""The debug overlay: lines of text drawn with OpenCV into a small RGBA image, blitted as a quad.

Text is rasterised on the CPU (cv2.putText, a few hundred pixels square) and uploaded as a
texture, then drawn by ``shaders/overlay.glsl`` with alpha blending over the finished picture.
No font files, no GL text library: it runs on any OpenGL 3.3 context, llvmpipe included.
"""

from __future__ import annotations

import cv2
import moderngl
import numpy as np

from waterrock.render.programs import load_program

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (235, 240, 255, 255)
PANEL_COLOR = (0, 0, 0, 170)


def text_image(lines: list[str], scale: float = 0.45, pad: int = 6) -> np.ndarray:
    """An RGBA image (H, W, 4) uint8 of ``lines`` on a translucent dark panel, row 0 on top."""
    lines = lines or [""]
    thickness = 1
    sizes = [cv2.getTextSize(t, FONT, scale, thickness) for t in lines]
    line_h = max(h + base for (_, h), base in sizes) + 4
    w = max(tw for (tw, _), _ in sizes) + 2 * pad
    h = line_h * len(lines) + 2 * pad
    img = np.zeros((h, max(w, 8), 4), np.uint8)
    img[:] = PANEL_COLOR
    for i, t in enumerate(lines):
        y = pad + (i + 1) * line_h - 6
        cv2.putText(img, t, (pad, y), FONT, scale, TEXT_COLOR, thickness, cv2.LINE_AA)
    return img


class Overlay:
    """Draws text panels onto the current framebuffer of ``ctx``."""

    def __init__(self, ctx: moderngl.Context):
        self.ctx = ctx
        self.program = load_program(ctx, "overlay")
        self.vao = ctx.vertex_array(self.program, [])
        self._texture: moderngl.Texture | None = None

    def _upload(self, img: np.ndarray) -> moderngl.Texture:
        h, w = img.shape[:2]
        if self._texture is None or self._texture.size != (w, h):
            if self._texture is not None:
                self._texture.release()
            self._texture = self.ctx.texture((w, h), 4)
            self._texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._texture.write(np.ascontiguousarray(img).tobytes())
        return self._texture

    def draw(
        self,
        framebuffer: moderngl.Framebuffer,
        size: tuple[int, int],
        lines: list[str],
        corner: str = "top-left",
        margin: int = 10,
    ) -> None:
        """``lines`` in a panel at a ``corner`` ('top-left', 'top-right', 'bottom-left', 'bottom-right')."""
        if not lines:
            return
        scale = max(0.35, 0.45 * size[1] / 720.0)
        img = text_image(lines, scale)
        tex = self._upload(img)
        w, h = size
        tw, th = min(img.shape[1], w), min(img.shape[0], h)
        x0 = margin if "left" in corner else w - margin - tw
        y_top = margin if "top" in corner else h - margin - th  # pixels from the top
        # pixels (y down) to NDC (y up)
        nx0, nx1 = 2.0 * x0 / w - 1.0, 2.0 * (x0 + img.shape[1]) / w - 1.0
        ny1, ny0 = 1.0 - 2.0 * y_top / h, 1.0 - 2.0 * (y_top + img.shape[0]) / h
        framebuffer.use()
        framebuffer.viewport = (0, 0, w, h)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        tex.use(0)
        self.program["text"].value = 0
        self.program["rect"].value = (nx0, ny0, nx1, ny1)
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4)
        self.ctx.disable(moderngl.BLEND)

    def release(self) -> None:
        if self._texture is not None:
            self._texture.release()
        self.vao.release()
        self.program.release()
