"""Offscreen targets: a framebuffer to render into without a window (video, tests, CI)."""

from __future__ import annotations

import ctypes

import moderngl
import numpy as np

# The OpenGL versions a context is asked for, in turn: 4.3 has the compute shaders of the lines'
# compute rasterizer (render/lines.py); 3.3 core is all the rest needs. Mesa hands out its
# newest either way; NVIDIA's EGL hands out exactly the version asked for.
GL_VERSIONS = ((4, 3), (3, 3))


def standalone_context() -> moderngl.Context:
    """A headless OpenGL 4.3 context through EGL, or 3.3 where that is all there is: the GPU's
    driver, or Mesa's llvmpipe on CI. Give it back with :func:`release_context`."""
    for major, minor in GL_VERSIONS[:-1]:
        try:
            return moderngl.create_context(standalone=True, backend="egl", require=100 * major + 10 * minor)
        except Exception:  # noqa: BLE001 - the driver lacks this version: ask for the next
            unbind_egl()
    major, minor = GL_VERSIONS[-1]
    return moderngl.create_context(standalone=True, backend="egl", require=100 * major + 10 * minor)


def release_context(ctx: moderngl.Context) -> None:
    """Release a standalone context and leave no EGL context current on this thread. For the
    last EGL context a process uses: moderngl binds a standalone context once, when it is made,
    so unbinding under another live one leaves that one unusable."""
    ctx.release()
    unbind_egl()


def unbind_egl() -> None:
    """Leave no EGL context current on this thread. A standalone context stays current after it
    is released, and a glfw (GLX) window opened later in the same process then dies in
    glXMakeCurrent with an X BadAccess error, which ends the process; the windows call this
    before they open."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return
    egl.eglGetCurrentDisplay.restype = ctypes.c_void_p
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    display = egl.eglGetCurrentDisplay()
    if display:
        egl.eglMakeCurrent(display, None, None, None)


def read_rgb(framebuffer: moderngl.Framebuffer, size: tuple[int, int]) -> np.ndarray:
    """The framebuffer's pixels as an image: (H, W, 3) uint8, row 0 at the top."""
    w, h = size
    data = framebuffer.read(viewport=(0, 0, w, h), components=3, alignment=1)
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()


class OffscreenTarget:
    """An 8-bit RGB framebuffer of ``size`` (w, h); makes its own EGL context unless given one."""

    def __init__(self, size: tuple[int, int], ctx: moderngl.Context | None = None):
        self.size = (int(size[0]), int(size[1]))
        self._owns_ctx = ctx is None
        self.ctx = standalone_context() if ctx is None else ctx
        self.color = self.ctx.renderbuffer(self.size, 4)
        self.framebuffer = self.ctx.framebuffer(color_attachments=[self.color])

    def read(self) -> np.ndarray:
        return read_rgb(self.framebuffer, self.size)

    def release(self) -> None:
        self.framebuffer.release()
        self.color.release()
        if self._owns_ctx:
            self.ctx.release()

    def __enter__(self) -> OffscreenTarget:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
