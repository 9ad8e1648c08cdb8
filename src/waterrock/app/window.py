"""The interactive window: glfw, an OpenGL 4.3 core context (3.3 where that is all), the renderer
drawing to the screen.

Hotkeys (H shows them):
    space pause / resume     R reset the water     F fullscreen on / off
    D debug overlay (fps, ms per stage, particles, tracker)    T tracker panel
    S screenshot (PNG)       H help               Q or Esc quit
The mouse is a visitor: drag with the left button and a sphere moves through the water with the
cursor's velocity, on the plane that faces the viewer through the waterfall (``pointer.py``).
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import numpy as np

from waterrock.app.loop import FrameLoop, clear_snapshot
from waterrock.app.overlay import Overlay, draw_tracker_panel
from waterrock.app.pointer import pixel_to_scene, touch_plane, visitor_radius
from waterrock.app.session import Inputs, SharedKeys, run_view, save_png
from waterrock.render.target import GL_VERSIONS, unbind_egl
from waterrock.scene import Scene
from waterrock.snapshots import ParticleSnapshot

log = logging.getLogger(__name__)


def create_gl_window(glfw, create):
    """``create()`` (a glfw.create_window call, its other hints set) with an OpenGL 4.3 core
    context, or 3.3 where the driver has no 4.3 (render.target.GL_VERSIONS); None if neither."""
    for major, minor in GL_VERSIONS:
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, major)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, minor)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        try:
            handle = create()
        except glfw.GLFWError:
            handle = None
        if handle:
            return handle
    return None


HELP = [
    "waterrock keys",
    "  space  pause / resume",
    "  R      reset the water",
    "  F      fullscreen on / off",
    "  D      debug overlay",
    "  T      tracker panel",
    "  S      screenshot (PNG)",
    "  H      this help",
    "  Q Esc  quit",
    "  drag   the mouse is a visitor",
]
DEFAULT_SIZE = (1280, 720)


class WindowError(RuntimeError):
    """No window can be opened here (no display, no OpenGL 3.3): the caller runs headless."""


class Window:
    """A glfw window with a current OpenGL core context (4.3, or 3.3) and a moderngl context on it."""

    def __init__(self, title: str, size: tuple[int, int] = DEFAULT_SIZE, fullscreen: bool = False):
        try:
            import glfw
        except Exception as err:  # noqa: BLE001 - a missing libglfw shows as ImportError or OSError
            raise WindowError(f"glfw cannot load: {err}") from err
        import moderngl

        self.glfw = glfw
        unbind_egl()
        glfw.ERROR_REPORTING = "raise"
        try:
            if not glfw.init():
                raise WindowError("glfw.init failed")
            monitor = glfw.get_primary_monitor() if fullscreen else None
            if monitor is not None:
                mode = glfw.get_video_mode(monitor)
                size = (mode.size.width, mode.size.height)
            self.handle = create_gl_window(glfw, lambda: glfw.create_window(int(size[0]), int(size[1]), title,
                                                                            monitor, None))
            if not self.handle:
                raise WindowError("glfw could not create an OpenGL 3.3 core window")
            glfw.make_context_current(self.handle)
            glfw.swap_interval(1)
            self.ctx = moderngl.create_context(require=330)
        except glfw.GLFWError as err:
            glfw.terminate()
            raise WindowError(f"glfw: {err}") from err
        except WindowError:
            glfw.terminate()
            raise
        except Exception as err:  # noqa: BLE001 - moderngl: no GL 3.3 on this display
            glfw.terminate()
            raise WindowError(f"no OpenGL 3.3 context: {err}") from err
        glfw.ERROR_REPORTING = "log"
        self.fullscreen = monitor is not None
        self._windowed = (100, 100, int(size[0]), int(size[1]))
        log.info(
            "window %dx%d, OpenGL %s (%s)",
            *self.framebuffer_size(),
            self.ctx.info["GL_VERSION"],
            self.ctx.info["GL_RENDERER"],
        )

    def framebuffer_size(self) -> tuple[int, int]:
        w, h = self.glfw.get_framebuffer_size(self.handle)
        return max(int(w), 1), max(int(h), 1)

    def window_size(self) -> tuple[int, int]:
        w, h = self.glfw.get_window_size(self.handle)
        return max(int(w), 1), max(int(h), 1)

    def toggle_fullscreen(self) -> None:
        glfw = self.glfw
        if self.fullscreen:
            x, y, w, h = self._windowed
            glfw.set_window_monitor(self.handle, None, x, y, w, h, 0)
        else:
            monitor = glfw.get_primary_monitor()
            if monitor is None:
                log.warning("no monitor to go fullscreen on")
                return
            x, y = glfw.get_window_pos(self.handle)
            self._windowed = (x, y, *self.window_size())
            mode = glfw.get_video_mode(monitor)
            glfw.set_window_monitor(
                self.handle, monitor, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate
            )
        self.fullscreen = not self.fullscreen

    def close(self) -> None:
        self.ctx.release()
        self.glfw.destroy_window(self.handle)
        self.glfw.terminate()


class InstallationView(SharedKeys):
    """The frame loop's view in a window: renderer to the screen, overlay, keys, mouse visitor."""

    def __init__(self, window: Window, scene: Scene, renderer, screenshot: Path | None = None):
        from waterrock.tracking.virtual import VirtualVisitor

        self.window, self.scene, self.renderer = window, scene, renderer
        self.overlay = Overlay(window.ctx)
        self.screenshot_path = screenshot
        self.loop: FrameLoop | None = None
        self.inputs: Inputs | None = None
        self.show_debug = self.show_help = self.show_tracker = False
        self._want_screenshot = False
        self._plane = touch_plane(scene)
        self.visitor = VirtualVisitor(self.pixel_to_world, radius=visitor_radius(scene))
        glfw = window.glfw
        glfw.set_key_callback(window.handle, self._on_key)
        glfw.set_mouse_button_callback(window.handle, self._on_button)
        glfw.set_cursor_pos_callback(window.handle, self._on_cursor)

    # --- the mouse as a visitor ----------------------------------------------------------------

    def pixel_to_world(self, x: float, y: float) -> np.ndarray:
        """Window coordinates (what glfw reports) to the scene, through the renderer's flattening."""
        ww, wh = self.window.window_size()
        fw, fh = self.renderer.size
        return pixel_to_scene(self.renderer.flatten, (fw, fh), x * fw / ww, y * fh / wh, *self._plane)

    def _on_button(self, handle, button, action, _mods) -> None:
        glfw = self.window.glfw
        if button != glfw.MOUSE_BUTTON_LEFT:
            return
        x, y = glfw.get_cursor_pos(handle)
        if action == glfw.PRESS:
            self.visitor.press(x, y)
        elif action == glfw.RELEASE:
            self.visitor.release()

    def _on_cursor(self, _handle, x, y) -> None:
        if self.visitor.pressed:
            self.visitor.move(x, y)

    # --- keys ----------------------------------------------------------------------------------

    def _on_key(self, handle, key, _scancode, action, _mods) -> None:
        glfw = self.window.glfw
        if action != glfw.PRESS or self.loop is None:
            return
        if not self._shared_key(glfw, key) and key == glfw.KEY_F:
            self.window.toggle_fullscreen()

    # --- the View protocol ---------------------------------------------------------------------

    def poll(self) -> None:
        self.window.glfw.poll_events()
        if self.window.glfw.window_should_close(self.window.handle) and self.loop is not None:
            self.loop.stop()

    def update(self, snapshot: ParticleSnapshot) -> None:
        self.renderer.update(snapshot)

    def clear_trails(self) -> None:
        self.renderer.update(clear_snapshot())

    def render(self) -> None:
        size = self.window.framebuffer_size()
        if size != tuple(self.renderer.size):
            self.renderer.resize(size)
        screen = self.window.ctx.screen
        self.renderer.render(screen)
        self._draw_overlays(screen, size)
        if self._want_screenshot:
            self._want_screenshot = False
            self.save_screenshot(self.screenshot_path or self.default_screenshot_name())

    def _draw_overlays(self, screen, size) -> None:
        if self.show_debug and self.loop is not None:
            lines = self.loop.overlay_lines()
            if self.inputs is not None:
                lines.append(self.inputs.tracker_state())
            self.overlay.draw(screen, size, lines, "top-left")
        if self.show_tracker and self.inputs is not None:
            draw_tracker_panel(self.overlay, screen, size, self.inputs)
        if self.show_help:
            self.overlay.draw(screen, size, HELP, "top-right")

    def present(self) -> None:
        self.window.glfw.swap_buffers(self.window.handle)

    # --- screenshots ---------------------------------------------------------------------------

    @staticmethod
    def default_screenshot_name() -> Path:
        return Path.cwd() / f"waterrock-{datetime.datetime.now():%Y%m%d-%H%M%S}.png"

    def read_screen(self) -> np.ndarray:
        from waterrock.render.target import read_rgb

        return read_rgb(self.window.ctx.screen, self.window.framebuffer_size())

    def save_screenshot(self, path: Path) -> Path:
        out = save_png(self.read_screen(), path)
        log.info("screenshot saved: %s", out)
        print(f"screenshot: {out}", flush=True)
        return out

    def release(self) -> None:
        self.overlay.release()
        self.renderer.release()


def run_window(
    scene: Scene,
    arch: str | None = None,
    seconds: float | None = None,
    screenshot: str | Path | None = None,
    fullscreen: bool = False,
    size: tuple[int, int] | None = None,
    overlay: bool = False,
    publisher=None,
) -> int:
    """The installation in a window until Q / Esc / SIGTERM, or ``seconds`` after the first
    frame (then a screenshot to ``screenshot``, if given); each frame also to ``publisher``'s
    render nodes. Raises WindowError before anything slow happens if no window can be opened,
    so the caller can fall back to headless."""
    from waterrock.render.command import scene_rock
    from waterrock.render.renderer import Renderer

    window = Window(f"waterrock - {scene.name}", tuple(size) if size else DEFAULT_SIZE, fullscreen)
    view = None
    try:
        renderer = Renderer(
            window.ctx, scene.render, window.framebuffer_size(), scene_rock(scene), scene.fluid.max_particles
        )
        view = InstallationView(window, scene, renderer, Path(screenshot) if screenshot else None)

        def on_stop(rc: int) -> None:
            if rc == 0 and screenshot is not None and seconds is not None:
                view.render()  # the back buffer is undefined after a swap: draw the last frame again
                view.save_screenshot(Path(screenshot))

        return run_view(view, scene, arch, seconds, overlay, visitor=view.visitor, on_stop=on_stop,
                        publisher=publisher)
    finally:
        if view is not None:
            view.release()
        window.close()
