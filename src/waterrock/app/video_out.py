"""Live video out: the composed picture, each displayed frame, as an NDI source (issue 25).

TouchDesigner, Resolume, MadMapper and OBS take an NDI source off the network as a video input,
so a media server can map, mix or record the water while waterrock draws it. The picture sent is
the one the renderer composes (its light, tone-mapped), at the picture's size, before any
projector's warp: what to do with it is the receiving tool's.

On the frame loop's thread, before each displayed frame, the light of the frame just shown is
composed into a target of the picture's size and read into one of ``DEPTH`` pixel buffers, and the
buffer read ``DEPTH - 1`` frames ago (its copy long finished, so no wait) is handed to a sender
thread, which flips it top-down and sends it (cyndilib, the ``ndi`` extra, which carries NDI's
runtime). A frame the sender has not taken by the next is replaced, never queued: the picture is
live or it is nothing. The scene's ``[console] ndi`` names the source; a missing package is the
console's warning, and the water runs on without it.

Spout (Windows) and Syphon (macOS) are the other platforms' routes for the same picture (SpoutGL,
syphon-python); a v4l2loopback virtual camera (pyvirtualcam) is Linux's route to tools that take
only a camera. None is built here: each needs a platform or a kernel module this project's CI does
not have, and an NDI receiver takes the picture on all three.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

log = logging.getLogger(__name__)

DEPTH = 3  # pixel buffers in the ring: a frame's read-back is collected two frames later


class NdiOut:
    """The composed picture sent as the NDI source ``name``; a console service (app/console.py):
    ``on_frame(loop)`` on the frame loop's thread (the renderer's context current), ``on_second``,
    ``close()`` at the end; announced at ``frame_rate``. ImportError without cyndilib."""

    def __init__(self, name: str, renderer, frame_rate: float = 60.0):
        import cyndilib  # noqa: F401 - ImportError here: the console's warning, before anything is made

        from waterrock.render.programs import load_program

        self.name, self.renderer, self.ctx = name, renderer, renderer.ctx
        self.size = tuple(int(v) for v in renderer.size)
        self.program = load_program(self.ctx, "compose", {"SCALED": 1})
        self.vao = self.ctx.vertex_array(self.program, [])
        self._color = self.ctx.renderbuffer(self.size, 4)
        self._fbo = self.ctx.framebuffer(color_attachments=[self._color])
        self._ring = [self.ctx.buffer(reserve=self.size[0] * self.size[1] * 4) for _ in range(DEPTH)]
        self._filled = [False] * DEPTH
        self._slot = 0
        self.sent = 0  # frames the sender sent
        self.replaced = 0  # frames replaced by a newer one before the sender took them
        self.spent = 0.0  # s on the loop's thread, for the cost figure
        self.frames = 0
        self._latest: np.ndarray | None = None
        self._wake = threading.Condition()
        self._closing = False
        self._sender = _open_sender(name, self.size, frame_rate)
        self._thread = threading.Thread(target=self._send, name="ndi out", daemon=True)
        self._thread.start()
        log.info("NDI source %r: the picture, %dx%d, each frame", name, *self.size)

    # --- the frame loop's side ------------------------------------------------------------------

    def on_frame(self, loop) -> None:
        """Before each displayed frame: the frame just shown composed and read back into the ring,
        and the one read DEPTH - 1 frames ago handed to the sender."""
        t0 = time.perf_counter()
        slot = self._slot
        self.renderer.compose_into(self._fbo, self.size, self.program, self.vao)
        self._fbo.read_into(self._ring[slot], components=4, alignment=1)  # into the buffer: no wait
        self._filled[slot] = True
        self._slot = oldest = (slot + 1) % DEPTH
        if self._filled[oldest]:
            rgba = np.frombuffer(self._ring[oldest].read(), np.uint8).reshape(self.size[1], self.size[0], 4)
            with self._wake:
                self.replaced += self._latest is not None
                self._latest = rgba
                self._wake.notify()
        self.spent += time.perf_counter() - t0
        self.frames += 1

    def on_second(self, loop) -> None:
        """Nothing once a second: each frame is sent as it is read."""

    # --- the sender's thread --------------------------------------------------------------------

    def _send(self) -> None:
        while True:
            with self._wake:
                while self._latest is None and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                rgba, self._latest = self._latest, None
            try:
                self._sender.write_video(np.ascontiguousarray(rgba[::-1]).ravel())  # GL's rows run bottom-up
                self.sent += 1
            except Exception as err:  # noqa: BLE001 - the picture out is not worth the water
                log.warning("NDI source %r stopped sending (%s: %s); the water runs on", self.name,
                            type(err).__name__, err)
                return

    def figures(self) -> dict:
        return {"name": self.name, "size": list(self.size), "sent": self.sent, "replaced": self.replaced,
                "ms_a_frame": round(1e3 * self.spent / max(self.frames, 1), 3)}

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(2.0)
        self._sender.close()
        for r in (*self._ring, self._fbo, self._color, self.vao, self.program):
            r.release()
        log.info("NDI source %r closed: %d frames sent, %d replaced before sending, %.2f ms a frame on the loop",
                 self.name, self.sent, self.replaced, 1e3 * self.spent / max(self.frames, 1))


def _open_sender(name: str, size: tuple[int, int], frame_rate: float):
    """cyndilib's sender of RGBX frames of ``size``, announced at the scene's frame rate, not
    clocked (the frame loop sets the pace)."""
    from fractions import Fraction

    from cyndilib import FourCC, Sender, VideoSendFrame

    frame = VideoSendFrame()
    frame.set_resolution(*size)
    frame.set_fourcc(FourCC.RGBX)
    frame.set_frame_rate(Fraction(frame_rate).limit_denominator(1001))
    sender = Sender(name, clock_video=False)
    sender.set_video_frame(frame)
    sender.open()
    return sender
