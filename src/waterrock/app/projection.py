"""Projection mode: ``waterrock project``, the installation on its projectors.

One borderless fullscreen window per output (``[[projection.outputs]]`` in the scene, or the
primary monitor), all sharing one OpenGL context's objects. Each frame the scene is drawn once
into a picture texture; each output then shows its part of it through its corner-pin warp and
edge blend (``render/warp.py``), or, when the scene's projector calibration holds it, paints the
picture onto the rock's shape from its calibrated projector (``render/onrock.py``); either way
its grid warp, if it has one, touches the result up. Only one output waits for vertical sync,
so several projectors do not divide the frame rate between them. Windows do not minimise when
another screen takes the focus, and the cursor is hidden unless the warp is being edited.

Keys (any output): W warp edit on this output (then see ``warp_edit.EDIT_HELP``), space pause,
R reset the water, D debug overlay, T tracker panel, H help, S screenshot, Q or Esc quit.
"""

from __future__ import annotations

import ctypes
import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waterrock.app.loop import FrameLoop, clear_snapshot
from waterrock.app.overlay import Overlay, draw_tracker_panel
from waterrock.app.session import Inputs, SharedKeys, run_view, save_png
from waterrock.app.warp_edit import EDIT_HELP, WarpEditor
from waterrock.app.window import WindowError, create_gl_window
from waterrock.procam.model import Pinhole, load_procam, scene_procam_path
from waterrock.render.target import unbind_egl
from waterrock.scene import IDENTITY_CORNERS, EdgeBlend, ProjectionOutputs, ProjectorOutput, Scene
from waterrock.snapshots import ParticleSnapshot

log = logging.getLogger(__name__)

HELP = [
    "waterrock projection keys",
    "  W      edit this output's warp",
    "  space  pause / resume",
    "  R      reset the water",
    "  D      debug overlay",
    "  T      tracker panel",
    "  S      screenshot (PNG)",
    "  H      this help",
    "  Q Esc  quit",
]
MAX_PICTURE = 7680  # px: the composed picture's longest side at most (the renderer's limit)


@dataclass(frozen=True)
class Monitor:
    index: int
    name: str
    position: tuple[int, int]
    size: tuple[int, int]
    refresh_rate: int
    primary: bool

    def describe(self) -> str:
        w, h = self.size
        x, y = self.position
        rate = f" {self.refresh_rate} Hz" if self.refresh_rate > 0 else ""
        primary = " (primary)" if self.primary else ""
        return f"{self.index} '{self.name}' {w}x{h}{rate} at {x},{y}{primary}"


def _address(handle) -> int | None:
    """A glfw monitor handle's identity (handles are ctypes pointers, new objects on each call)."""
    return None if not handle else ctypes.addressof(handle.contents)


def list_monitors(glfw) -> tuple[list[Monitor], list]:
    """The monitors glfw sees, in its order (the primary first), and their glfw handles."""
    handles = list(glfw.get_monitors() or [])
    primary = _address(glfw.get_primary_monitor())
    monitors = []
    for i, m in enumerate(handles):
        mode = glfw.get_video_mode(m)
        name = glfw.get_monitor_name(m)
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        monitors.append(
            Monitor(
                i,
                name,
                tuple(glfw.get_monitor_pos(m)),
                (mode.size.width, mode.size.height),
                mode.refresh_rate,
                primary is not None and _address(m) == primary,
            )
        )
    return monitors, handles


def pick_monitor(index: int, monitors: list[Monitor]) -> tuple[Monitor, str | None]:
    """The monitor numbered ``index``, or the primary one and a warning that says why."""
    if not monitors:
        raise WindowError("no monitor is connected")
    for m in monitors:
        if m.index == index:
            return m, None
    primary = next((m for m in monitors if m.primary), monitors[0])
    present = "; ".join(m.describe() for m in monitors)
    return primary, (
        f"monitor {index} is not connected (monitors present: {present}): using the primary monitor {primary.index}"
    )


def outputs_for(projection: ProjectionOutputs, monitors: list[int] | None) -> ProjectionOutputs:
    """The outputs to open: the scene's, with the monitors given on the command line in order
    (outputs beyond the scene's show the whole picture), or one on the primary monitor."""
    outputs = list(projection.outputs)
    if monitors:
        outputs = [
            (outputs[i] if i < len(outputs) else ProjectorOutput()).model_copy(update={"monitor": m})
            for i, m in enumerate(monitors)
        ]
    if not outputs:
        outputs = [ProjectorOutput()]
    vsync = projection.vsync_output if projection.vsync_output < len(outputs) else 0
    # a copy, not a new section: the calibration settings ride along, and a warp saved from
    # this projection must not drop them from the scene file
    return projection.model_copy(update={"outputs": outputs, "vsync_output": vsync})


def projector_devices(scene: Scene, count: int, rock=None) -> dict[int, Pinhole]:
    """The calibrated projector of each of ``count`` outputs that paints on the rock, by output
    index: those the scene's projector calibration holds, when the scene has a rock (``rock``,
    its mesh). One log line per output says how it renders. A calibration that cannot be read is
    an error in the log naming the file, and every output falls back to its corner pin: the show
    goes on."""
    path = scene_procam_path(scene)
    devices: dict[int, Pinhole] = {}
    why = "no projector calibration" if scene.projection.on_rock else "on_rock = false"
    if path is not None:
        try:
            cal = load_procam(path)
        except (OSError, ValueError) as err:  # missing, torn, not JSON, not a calibration
            log.error("projector calibration %s cannot be used (%s): every output renders through its "
                      "corner pin", path, err)
            why = f"calibration {path} unusable"
        else:
            if rock is None:
                log.error("projector calibration %s is set but the scene has no rock mesh to paint on: every "
                          "output renders through its corner pin", path)
                why = "no rock mesh"
            else:
                devices = {i: cal.outputs[i].projector for i in range(count) if i in cal.outputs}
                why = f"not in calibration {path}"
                if extra := sorted(set(cal.outputs) - set(range(count))):
                    log.warning("projector calibration %s has outputs %s that are not open", path, extra)
    for i in range(count):
        if i in devices:
            d = devices[i]
            log.info("output %d renders on the rock from its calibrated projector (%dx%d, at %s)", i, *d.size,
                     np.round(d.centre, 3).tolist())
        else:
            log.info("output %d renders through its corner pin (%s)", i, why)
    return devices


def rock_output(output: ProjectorOutput) -> ProjectorOutput:
    """What the warp pass draws for an output on the rock: the projector's view as it is (its
    whole frame, no corner pin, no blend), touched up by the output's grid."""
    return output.model_copy(update={"corners": IDENTITY_CORNERS, "region": (0.0, 0.0, 1.0, 1.0),
                                     "blend": EdgeBlend()})


def picture_size(outputs: list[ProjectorOutput], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The composed picture's pixels: enough that each output's region has its output's pixels."""
    w = max(size[0] / (o.region[2] - o.region[0]) for o, size in zip(outputs, sizes, strict=True))
    h = max(size[1] / (o.region[3] - o.region[1]) for o, size in zip(outputs, sizes, strict=True))
    shrink = min(1.0, MAX_PICTURE / max(w, h))
    return max(16, round(w * shrink)), max(16, round(h * shrink))


class OutputWindow:
    """A borderless fullscreen glfw window on one monitor, its context sharing ``share``'s."""

    def __init__(self, glfw, index: int, monitor: Monitor, handle, share=None, vsync: bool = False):
        self.glfw, self.index, self.monitor = glfw, index, monitor
        glfw.default_window_hints()
        glfw.window_hint(glfw.AUTO_ICONIFY, False)  # a click on another screen must not minimise it
        glfw.window_hint(glfw.DECORATED, False)
        glfw.window_hint(glfw.FOCUS_ON_SHOW, share is None)
        mode = glfw.get_video_mode(handle)
        # the monitor's own mode: a borderless window over it, no mode switch ("windowed full screen")
        glfw.window_hint(glfw.RED_BITS, mode.bits.red)
        glfw.window_hint(glfw.GREEN_BITS, mode.bits.green)
        glfw.window_hint(glfw.BLUE_BITS, mode.bits.blue)
        glfw.window_hint(glfw.REFRESH_RATE, mode.refresh_rate)
        title = f"waterrock output {index}"
        self.handle = create_gl_window(glfw, lambda: glfw.create_window(mode.size.width, mode.size.height, title,
                                                                        handle, share))
        if not self.handle:
            raise WindowError(f"glfw could not open an OpenGL 3.3 window on monitor {monitor.describe()}")
        glfw.make_context_current(self.handle)
        glfw.swap_interval(1 if vsync else 0)
        glfw.set_input_mode(self.handle, glfw.CURSOR, glfw.CURSOR_HIDDEN)
        self.vsync = vsync

    def framebuffer_size(self) -> tuple[int, int]:
        w, h = self.glfw.get_framebuffer_size(self.handle)
        return max(int(w), 1), max(int(h), 1)

    def window_size(self) -> tuple[int, int]:
        w, h = self.glfw.get_window_size(self.handle)
        return max(int(w), 1), max(int(h), 1)

    def show_cursor(self, shown: bool) -> None:
        glfw = self.glfw
        glfw.set_input_mode(self.handle, glfw.CURSOR, glfw.CURSOR_NORMAL if shown else glfw.CURSOR_HIDDEN)

    def make_current(self) -> None:
        self.glfw.make_context_current(self.handle)


class Outputs:
    """All the output windows and the one moderngl context on the first one's OpenGL context."""

    def __init__(self, projection: ProjectionOutputs):
        try:
            import glfw
        except Exception as err:  # noqa: BLE001 - a missing libglfw shows as ImportError or OSError
            raise WindowError(f"glfw cannot load: {err}") from err
        import moderngl

        self.glfw = glfw
        self.windows: list[OutputWindow] = []
        unbind_egl()
        glfw.ERROR_REPORTING = "raise"
        try:
            if not glfw.init():
                raise WindowError("glfw.init failed")
            monitors, handles = list_monitors(glfw)
            log.info("monitors: %s", "; ".join(m.describe() for m in monitors) or "none")
            chosen = []
            for out in projection.outputs:
                monitor, warning = pick_monitor(out.monitor, monitors)
                if warning:
                    log.warning("%s", warning)
                chosen.append(monitor)
            order = [projection.vsync_output] + [i for i in range(len(chosen)) if i != projection.vsync_output]
            by_index: dict[int, OutputWindow] = {}
            for i in order:  # the vsync output first: its context is the one the others share
                share = by_index[order[0]].handle if by_index else None
                by_index[i] = OutputWindow(
                    glfw, i, chosen[i], handles[chosen[i].index], share, vsync=i == projection.vsync_output
                )
            self.windows = [by_index[i] for i in range(len(chosen))]
            self.main = by_index[order[0]]
            self.main.make_current()
            self.ctx = moderngl.create_context(require=330)
        except glfw.GLFWError as err:
            self._terminate()
            raise WindowError(f"glfw: {err}") from err
        except WindowError:
            self._terminate()
            raise
        except Exception as err:  # noqa: BLE001 - moderngl: no GL 3.3 on this display
            self._terminate()
            raise WindowError(f"no OpenGL 3.3 context: {err}") from err
        glfw.ERROR_REPORTING = "log"
        for w in self.windows:
            log.info(
                "output %d on monitor %s: %dx%d%s",
                w.index,
                w.monitor.describe(),
                *w.framebuffer_size(),
                ", vsync" if w.vsync else "",
            )
        log.info("OpenGL %s (%s)", self.ctx.info["GL_VERSION"], self.ctx.info["GL_RENDERER"])

    def _terminate(self) -> None:
        for w in self.windows:
            self.glfw.destroy_window(w.handle)
        self.windows = []
        self.glfw.terminate()

    def close(self) -> None:
        self.main.make_current()
        self.ctx.release()
        self._terminate()


class ProjectionView(SharedKeys):
    """The frame loop's view on the outputs: the scene drawn once into a picture texture, then
    through each output's warp; keys and the mouse edit the warps."""

    def __init__(self, outputs: Outputs, scene: Scene, projection: ProjectionOutputs, screenshot: Path | None = None):
        from waterrock.render.command import scene_rock
        from waterrock.render.onrock import OnRockPass
        from waterrock.render.renderer import Renderer
        from waterrock.render.warp import WarpPass

        self.outputs, self.scene = outputs, scene
        rock = scene_rock(scene)
        self.devices = projector_devices(scene, len(outputs.windows), rock)
        self.editor = WarpEditor(projection, scene.path, on_rock=self.devices)
        self.screenshot_path = screenshot
        self.loop: FrameLoop | None = None
        self.inputs: Inputs | None = None
        self.show_debug = self.show_help = self.show_tracker = False
        self._want_screenshot = False
        ctx = outputs.ctx
        sizes = [w.framebuffer_size() for w in outputs.windows]
        self.picture_size = picture_size(projection.outputs, sizes)
        log.info("picture %dx%d", *self.picture_size)
        outputs.main.make_current()
        self.renderer = Renderer(ctx, scene.render, self.picture_size, rock, scene.fluid.max_particles)
        self.picture = ctx.texture(self.picture_size, 4)
        self.picture_fbo = ctx.framebuffer([self.picture])
        # vertex arrays and framebuffers are not shared between contexts: a warp pass, an overlay
        # and, on the rock, an on-rock pass per window
        self.warps, self.overlays, self.onrock = [], [], {}
        for w in outputs.windows:
            w.make_current()
            self.warps.append(WarpPass(ctx))
            self.overlays.append(Overlay(ctx))
            if w.index in self.devices:
                self.onrock[w.index] = OnRockPass(ctx, rock)
                if len(self.devices) > 1:  # where their light overlaps on the rock, they share it
                    order = sorted(self.devices)
                    self.onrock[w.index].blend_with([self.devices[i] for i in order], order.index(w.index),
                                                    gamma=projection.outputs[w.index].blend.gamma)
        outputs.main.make_current()
        glfw = outputs.glfw
        for w in outputs.windows:
            glfw.set_key_callback(w.handle, self._key_handler(w.index))
            glfw.set_mouse_button_callback(w.handle, self._button_handler(w.index))
            glfw.set_cursor_pos_callback(w.handle, self._cursor_handler(w.index))

    # --- input ----------------------------------------------------------------------------------

    def _share(self, index: int, x: float, y: float) -> tuple[float, float]:
        w, h = self.outputs.windows[index].window_size()
        return x / w, y / h

    def _key_handler(self, index: int):
        return lambda _h, key, _sc, action, mods: self.on_key(index, key, action, mods)

    def _button_handler(self, index: int):
        def handler(handle, button, action, _mods):
            glfw = self.outputs.glfw
            if button != glfw.MOUSE_BUTTON_LEFT or self.editor.active != index:
                return
            if action == glfw.PRESS:
                self.editor.grab(*self._share(index, *glfw.get_cursor_pos(handle)))
            elif action == glfw.RELEASE:
                self.editor.release()

        return handler

    def _cursor_handler(self, index: int):
        def handler(_handle, x, y):
            if self.editor.active == index and self.editor.dragging:
                self.editor.drag(*self._share(index, x, y))

        return handler

    def _set_editing(self, index: int | None) -> None:
        for w in self.outputs.windows:
            w.show_cursor(index is not None)

    def on_key(self, index: int, key: int, action: int, mods: int = 0) -> None:
        glfw = self.outputs.glfw
        if action not in (glfw.PRESS, glfw.REPEAT) or self.loop is None:
            return
        ed = self.editor
        if ed.active is not None:
            self._edit_key(key, mods)
            return
        if action != glfw.PRESS:
            return
        if not self._shared_key(glfw, key) and key == glfw.KEY_W:
            ed.begin(index)
            self._set_editing(index)

    def _edit_key(self, key: int, mods: int) -> None:
        glfw, ed = self.outputs.glfw, self.editor
        step = 10.0 if mods & glfw.MOD_SHIFT else 1.0
        size = self.outputs.windows[ed.active].framebuffer_size()
        arrows = {
            glfw.KEY_LEFT: (-step, 0.0),
            glfw.KEY_RIGHT: (step, 0.0),
            glfw.KEY_UP: (0.0, -step),
            glfw.KEY_DOWN: (0.0, step),
        }
        if key in arrows:
            ed.nudge(*arrows[key], size)
        elif key == glfw.KEY_TAB:
            ed.next_point(-1 if mods & glfw.MOD_SHIFT else 1)
        elif key == glfw.KEY_G:
            ed.toggle_grid()
        elif key == glfw.KEY_BACKSPACE:
            ed.reset()
        elif key == glfw.KEY_S and mods & glfw.MOD_CONTROL:
            ed.save()
        elif key in (glfw.KEY_W, glfw.KEY_ENTER, glfw.KEY_KP_ENTER):
            ed.finish()
            self._set_editing(None)
        elif key == glfw.KEY_ESCAPE:
            ed.cancel()
            self._set_editing(None)
        elif key == glfw.KEY_Q:
            ed.finish()
            self._set_editing(None)
            self.loop.stop()

    # --- the View protocol ----------------------------------------------------------------------

    def poll(self) -> None:
        glfw = self.outputs.glfw
        glfw.poll_events()
        if self.loop is not None and any(glfw.window_should_close(w.handle) for w in self.outputs.windows):
            self.loop.stop()

    def update(self, snapshot: ParticleSnapshot) -> None:
        self.outputs.main.make_current()
        self.renderer.update(snapshot)

    def clear_trails(self) -> None:
        self.update(clear_snapshot())

    def direct(self) -> bool:
        """One output showing the whole picture unwarped and unblended, not being edited: the
        renderer draws straight to the screen, and the warp pass (a full-screen texture read,
        milliseconds on a software renderer) is skipped."""
        windows = self.outputs.windows
        if len(windows) != 1 or self.editor.active is not None or self.devices:
            return False
        out = self.editor.outputs[0]
        plain = out.corners == IDENTITY_CORNERS and out.region == (0.0, 0.0, 1.0, 1.0) and not out.grid
        b = out.blend
        return (
            plain
            and b.left == b.right == b.top == b.bottom == 0.0
            and windows[0].framebuffer_size() == self.picture_size
        )

    def render(self) -> None:
        outs = self.outputs
        outs.main.make_current()
        shots = [] if self._want_screenshot else None
        if self.direct():
            self.renderer.render(outs.ctx.screen)
            self.draw_overlays(outs.main, self.overlays[0])
            if shots is not None:
                shots.append(self.read_output(outs.main))
        else:
            self.renderer.render(self.picture_fbo)
            # switching contexts flushes this one, so the others see the finished picture
            for w, warp, overlay in zip(outs.windows, self.warps, self.overlays, strict=True):
                w.make_current()
                self.draw_output(w, warp, overlay)
                if shots is not None:
                    shots.append(self.read_output(w))
            outs.main.make_current()
        if shots is not None:
            self._want_screenshot = False
            self.save_screenshots(shots, self.screenshot_path or self.default_screenshot_name())

    def draw_output(self, w: OutputWindow, warp, overlay: Overlay) -> None:
        ed = self.editor
        size = w.framebuffer_size()
        screen = self.outputs.ctx.screen
        editing = ed.active == w.index
        out = ed.outputs[w.index]
        corner = ed.corner if editing and not ed.grid_mode else -1
        point = ed.point if editing and ed.grid_mode else -1
        device = self.devices.get(w.index)
        if device is None:
            warp.draw(screen, size, self.picture, out, edit=editing, selected=corner, grid_selected=point)
        elif out.grid or editing:
            # on the rock, then through the grid: the projector's view is the warp's picture
            view = self.onrock[w.index].render(size, self.picture, device, self.renderer.flatten)
            warp.draw(screen, size, view, rock_output(out), edit=editing, grid_selected=point, corner_guides=False)
        else:
            self.onrock[w.index].draw(screen, size, self.picture, device, self.renderer.flatten)
        if editing:
            # the panel in the corner across from the picked point, so it never hides what is moved
            x, y = ed.selected_point()
            away = ("bottom-" if y < 0.5 else "top-") + ("right" if x < 0.5 else "left")
            overlay.draw(screen, size, [ed.status(), *EDIT_HELP], away)
            return
        self.draw_overlays(w, overlay)

    def draw_overlays(self, w: OutputWindow, overlay: Overlay) -> None:
        """The debug, tracker and help panels, unwarped, on the main output."""
        if w is not self.outputs.main:
            return
        size = w.framebuffer_size()
        screen = self.outputs.ctx.screen
        if self.show_debug and self.loop is not None:
            lines = self.loop.overlay_lines()
            if self.inputs is not None:
                lines.append(self.inputs.tracker_state())
            overlay.draw(screen, size, lines, "top-left")
        if self.show_tracker and self.inputs is not None:
            draw_tracker_panel(overlay, screen, size, self.inputs)
        if self.show_help:
            overlay.draw(screen, size, HELP, "top-right")

    def present(self) -> None:
        glfw = self.outputs.glfw
        # the outputs without vsync first, so the one that waits for its refresh does not delay them
        for w in sorted(self.outputs.windows, key=lambda w: w.vsync):
            glfw.swap_buffers(w.handle)

    # --- screenshots ----------------------------------------------------------------------------

    @staticmethod
    def default_screenshot_name() -> Path:
        return Path.cwd() / f"waterrock-projection-{datetime.datetime.now():%Y%m%d-%H%M%S}.png"

    def read_output(self, w: OutputWindow) -> np.ndarray:
        from waterrock.render.target import read_rgb

        return read_rgb(self.outputs.ctx.screen, w.framebuffer_size())

    def save_screenshots(self, images: list[np.ndarray], path: Path) -> list[Path]:
        """Output 0 to ``path``, output i to ``<stem>-<i><suffix>`` beside it."""
        path = Path(path)
        saved = []
        for i, img in enumerate(images):
            p = path if i == 0 else path.with_name(f"{path.stem}-{i}{path.suffix}")
            saved.append(save_png(img, p))
            log.info("screenshot saved: %s", p)
            print(f"screenshot: {p}", flush=True)
        return saved

    def screenshot_now(self, path: Path) -> None:
        """Draw every output again and save it (the back buffers are undefined after a swap)."""
        self.screenshot_path, self._want_screenshot = Path(path), True
        self.render()

    def release(self) -> None:
        for w, warp, overlay in zip(self.outputs.windows, self.warps, self.overlays, strict=True):
            w.make_current()
            warp.release()
            overlay.release()
            if w.index in self.onrock:
                self.onrock[w.index].release()
        self.outputs.main.make_current()
        self.picture_fbo.release()
        self.picture.release()
        self.renderer.release()


class TrackerWatch:
    """Says once in the log when the live tracker loses its source (no camera attached) and once
    when it has one again; the water runs on either way."""

    def __init__(self, inputs: Inputs):
        self.inputs = inputs
        self.lost = False

    def __call__(self, _loop: FrameLoop) -> None:
        runner = self.inputs.runner
        if runner is None:
            return
        st = runner.state()
        if st.status == "reconnecting" and st.last_error and not self.lost:
            self.lost = True
            log.warning(
                "the tracker has no source (%s): the water runs without visitors, and the source is "
                "tried again every few seconds",
                st.last_error,
            )
        elif st.status == "running" and self.lost:
            self.lost = False
            log.warning("the tracker's source %s is back: visitors are seen again", st.source)


def _watches(scene: Scene, outputs: Outputs, inputs: Inputs):
    """The projection's once-a-second callbacks: the tracker's source, and the nightly check."""
    watches = [TrackerWatch(inputs)]
    if scene.projection.check_time is not None:
        from waterrock.app.calibrate_auto import NightlyCheck

        watches.append(NightlyCheck(scene, outputs, inputs))
        log.info("the projector calibration is checked each night at %s", scene.projection.check_time)

    def every_second(loop: FrameLoop) -> None:
        for watch in watches:
            watch(loop)

    return every_second


def run_projection(
    scene: Scene,
    arch: str | None = None,
    monitors: list[int] | None = None,
    seconds: float | None = None,
    screenshot: str | Path | None = None,
    overlay: bool = False,
    publisher=None,
) -> int:
    """The installation on its outputs until Q / Esc / SIGTERM, or ``seconds`` after the first
    frame (then a screenshot of each output to ``screenshot``, if given); each frame also to
    ``publisher``'s render nodes. Raises WindowError before anything slow happens if no output
    can be opened."""
    projection = outputs_for(scene.projection, monitors)
    outputs = Outputs(projection)
    view = None
    try:
        view = ProjectionView(outputs, scene, projection, Path(screenshot) if screenshot else None)

        def on_stop(rc: int) -> None:
            if view.editor.active is not None:
                view.editor.finish()  # quitting while editing keeps the edit, as leaving it does
            if rc == 0 and screenshot is not None and seconds is not None:
                view.screenshot_now(Path(screenshot))

        return run_view(view, scene, arch, seconds, overlay, watch=lambda inputs: _watches(scene, outputs, inputs),
                        on_stop=on_stop, publisher=publisher)
    finally:
        if view is not None:
            view.release()
        outputs.close()


def describe_monitors() -> list[str]:
    """One line per monitor, for ``waterrock project --list-monitors``."""
    try:
        import glfw
    except Exception as err:  # noqa: BLE001
        raise WindowError(f"glfw cannot load: {err}") from err
    glfw.ERROR_REPORTING = "raise"
    try:
        if not glfw.init():
            raise WindowError("glfw.init failed")
        monitors, _ = list_monitors(glfw)
    except glfw.GLFWError as err:
        raise WindowError(f"glfw: {err}") from err
    finally:
        glfw.terminate()
        glfw.ERROR_REPORTING = "log"
    return [m.describe() for m in monitors]
