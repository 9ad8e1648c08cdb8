"""The debug overlay: lines of text drawn with OpenCV into a small RGBA image, blitted as a quad.

Text is rasterised on the CPU (cv2.putText, a few hundred pixels square) and uploaded as a
texture, then drawn by ``shaders/overlay.glsl`` with alpha blending over the finished picture.
No font files, no GL text library: it runs on any OpenGL 3.3 context, llvmpipe included.

The tracker panel (T) adds the tracker's own picture: its last camera or depth frame, with the
pixels it took for visitors tinted, so an operator sees at a glance what the camera sees.
"""

from __future__ import annotations

import cv2
import moderngl
import numpy as np

from waterrock.render.programs import load_program

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (235, 240, 255, 255)
PANEL_COLOR = (0, 0, 0, 170)
FOREGROUND_TINT = np.array([255, 140, 0], np.float32)  # visitors' pixels in the tracker picture


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
        self.draw_image(framebuffer, size, text_image(lines, scale), corner, margin)

    def draw_image(
        self,
        framebuffer: moderngl.Framebuffer,
        size: tuple[int, int],
        img: np.ndarray,
        corner: str = "top-left",
        margin: int = 10,
    ) -> None:
        """An (H, W, 4) uint8 RGBA image, row 0 on top, at a ``corner``, blended over the picture."""
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


def tracker_picture(frame, foreground: np.ndarray | None, width: int = 320) -> np.ndarray:
    """The tracker's view of ``frame`` as an RGBA image ``width`` pixels wide: depth as grey
    (near is bright, no reading black), or the colour image, with ``foreground`` tinted orange."""
    rgb = tracker_view(frame, foreground)
    h, w = rgb.shape[:2]
    size = (int(width), max(1, round(h * width / w)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    out = np.empty((size[1], size[0], 4), np.uint8)
    out[..., :3] = np.clip(small, 0, 255)
    out[..., 3] = 255
    return out


def tracker_view(frame, foreground: np.ndarray | None) -> np.ndarray:
    """``frame`` at its own size as float RGB: depth as grey, ``foreground`` tinted orange."""
    if frame.depth is not None:
        d = frame.depth.astype(np.float32)
        valid = d > 0
        lo, hi = (float(d[valid].min()), float(d[valid].max())) if valid.any() else (0.0, 1.0)
        grey = np.where(valid, 255.0 * (1.0 - 0.85 * (d - lo) / max(hi - lo, 1.0)), 0.0)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
    else:
        rgb = frame.color[..., ::-1].astype(np.float32)  # OpenCV's BGR to RGB
    if foreground is not None and foreground.shape == rgb.shape[:2]:
        rgb[foreground] = 0.4 * rgb[foreground] + 0.6 * FOREGROUND_TINT
    return rgb


def tracker_panel_lines(inputs, most: int = 8) -> list[str]:
    """The tracker's state and the obstacles it sees now, one line each."""
    lines = [inputs.tracker_state()]
    snap = inputs.obstacles.latest()
    for i in range(min(len(snap), most)):
        a, r = snap.a[i], snap.radius[i]
        lines.append(f"  id {snap.ids[i]}: ({a[0]:+.2f}, {a[1]:+.2f}, {a[2]:+.2f}) r {r:.2f} w {snap.weight[i]:.2f}")
    return lines


def draw_tracker_panel(overlay: Overlay, framebuffer, size: tuple[int, int], inputs) -> None:
    """The T panel: the state and obstacles bottom-left, the camera's picture bottom-right."""
    overlay.draw(framebuffer, size, tracker_panel_lines(inputs), "bottom-left")
    picture = inputs.tracker_picture()
    if picture is not None:
        frame, foreground = picture
        width = int(min(max(160, size[0] // 4), 480))
        overlay.draw_image(framebuffer, size, tracker_picture(frame, foreground, width), "bottom-right")
