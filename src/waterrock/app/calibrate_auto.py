"""``waterrock calibrate --auto`` and ``--check``: the projector calibration on the venue's
outputs and camera, or on the simulated rig (``--rig virtual``).

The venue's rig is the scene's outputs, each a borderless fullscreen window that shows one
pattern at a time, and the tracker's camera, read on a thread of its own so that a frame is
taken only once the pattern has been on the projector and in the camera for ``settle``
seconds (a projector and a camera each hold a frame or two). The rough pose the solve starts
from is the tracker's depth calibration (``waterrock calibrate --source``, clicked once).

The simulated rig is built from the scene: its rock, one projector per output (two where the
scene lists none, so that a fresh machine sees the whole sequence) above and in front of the
rock, and a distorted depth camera beside them; seeded, so that ``--check`` meets the rig
that ``--auto`` calibrated.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import moderngl
import numpy as np

from waterrock.procam import auto
from waterrock.procam.model import Pinhole, default_procam_path, load_procam, save_procam, scene_procam_path
from waterrock.procam.solve import CalibrationError
from waterrock.scene import Scene

log = logging.getLogger(__name__)

VIRTUAL_PROJECTOR = (1024, 768)
VIRTUAL_CAMERA = (1280, 720)


class CalibrationUsageError(ValueError):
    """What the operator must set up first; one line."""


# --- the simulated rig ---------------------------------------------------------------------------


def virtual_devices(mesh, outputs: int) -> tuple[list[Pinhole], Pinhole, Pinhole]:
    """Projectors above and in front of the rock, a camera between them, and the camera's rough
    pose (6 cm and 3 degrees off, as a hand calibration leaves it)."""
    from waterrock.procam.rig import rough_pose

    lo, hi = mesh.bounds
    centre = 0.5 * (lo + hi)
    size = float(np.max(hi - lo))
    target = centre - [0.0, 0.2 * (hi[1] - lo[1]), 0.0]
    n = outputs or 2
    projectors = []
    for k in range(n):
        angle = np.radians(-35.0 + 70.0 * (k / (n - 1) if n > 1 else 0.5))
        eye = centre + size * np.array([1.5 * np.sin(angle), 2.0, 1.5 * np.cos(angle)])
        projectors.append(Pinhole.looking_at(VIRTUAL_PROJECTOR, 32, eye, target, shift=(0.0, 0.1),
                                             dist=(-0.05 + 0.08 * k / max(n - 1, 1), 0, 0, 0, 0)))
    camera = Pinhole.looking_at(VIRTUAL_CAMERA, 50, centre + size * np.array([-0.1, 1.6, 1.4]), target,
                                dist=(-0.12, 0.05, 0.001, -0.001, 0.0))
    return projectors, camera, rough_pose(camera)


# --- the venue's rig -----------------------------------------------------------------------------


class LatestFrame:
    """The newest frame of a source, read on a thread, with the time it arrived."""

    def __init__(self, source):
        self.source = source
        self.frame = None
        self.arrived = 0.0
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, name="calibration-camera", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for frame in self.source:
                with self._cond:
                    self.frame, self.arrived = frame, time.monotonic()
                    self._cond.notify_all()
                    if self._stop:
                        return
        except BaseException as err:  # noqa: BLE001 - handed to the waiting caller, which names it
            with self._cond:
                self.error = err
                self._cond.notify_all()
            return
        with self._cond:
            self.error = EOFError(f"{self.source.describe()} ended")
            self._cond.notify_all()

    def after(self, t: float, timeout: float = 5.0):
        """The first frame that arrived after monotonic time ``t``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.frame is None or self.arrived <= t:
                if self.error is not None:
                    raise CalibrationError(f"the camera stopped: {self.error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CalibrationError(f"the camera {self.source.describe()} gave no frame for {timeout:g} s")
                self._cond.wait(left)
            return self.frame

    def close(self) -> None:
        with self._cond:
            self._stop = True
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


class ScreenRig:
    """The scene's outputs as fullscreen windows, and a camera source (see the module's notes)."""

    def __init__(self, scene: Scene, source, monitors: list[int] | None = None, settle: float = 0.3,
                 outputs=None):
        """``outputs``: windows already open (a running projection's), borrowed and left open."""
        from waterrock.app.projection import Outputs, outputs_for
        from waterrock.render.warp import WarpPass
        from waterrock.scene import ProjectorOutput

        self._own_outputs = outputs is None
        self.outputs = Outputs(outputs_for(scene.projection, monitors)) if outputs is None else outputs
        self.settle = settle
        self.plain = ProjectorOutput()
        self.textures: dict[int, object] = {}
        self.warps = []
        for w in self.outputs.windows:
            w.make_current()
            self.warps.append(WarpPass(self.outputs.ctx))
        self.camera = LatestFrame(source)
        for i in range(len(self.outputs.windows)):
            self.show(i, None)

    @property
    def sizes(self) -> dict[int, tuple[int, int]]:
        return {w.index: w.framebuffer_size() for w in self.outputs.windows}

    def show(self, index: int, image: np.ndarray | None) -> None:
        """Draw ``image`` (grey or RGB uint8 of the output's pixels; None: black) fullscreen on
        output ``index``, unwarped, and present it."""
        w = self.outputs.windows[index]
        w.make_current()
        ctx = self.outputs.ctx
        size = w.framebuffer_size()
        pixels = np.zeros((size[1], size[0]), np.uint8) if image is None else np.asarray(image, np.uint8)
        if pixels.shape[:2] != (size[1], size[0]):
            raise ValueError(f"output {index} is {size[0]}x{size[1]}: a {pixels.shape[1]}x{pixels.shape[0]} "
                             f"pattern does not fit it")
        components = 1 if pixels.ndim == 2 else pixels.shape[2]
        old = self.textures.pop(index, None)
        if old is not None:
            old.release()
        # texture rows run bottom to top: upload the image upside down so that row 0 shows at the top
        tex = ctx.texture(size, components, np.ascontiguousarray(pixels[::-1]).tobytes(), alignment=1)
        if components == 1:
            tex.swizzle = "RRR1"
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)  # a projector pixel per pattern pixel
        self.textures[index] = tex
        self.warps[index].draw(ctx.screen, size, tex, self.plain)
        ctx.finish()
        self.outputs.glfw.swap_buffers(w.handle)
        self.outputs.glfw.poll_events()
        self.shown = time.monotonic()

    def read_output(self, index: int) -> np.ndarray:
        """What output ``index`` shows now (its front buffer after the swap is undefined, so the
        picture is drawn again and read back): (h, w, 3) uint8."""
        from waterrock.render.target import read_rgb

        w = self.outputs.windows[index]
        w.make_current()
        size = w.framebuffer_size()
        self.warps[index].draw(self.outputs.ctx.screen, size, self.textures[index], self.plain)
        return read_rgb(self.outputs.ctx.screen, size)

    def grab(self) -> np.ndarray:
        import cv2

        time.sleep(max(0.0, self.shown + self.settle - time.monotonic()))
        frame = self.camera.after(self.shown + self.settle)
        if frame.color is not None:
            return cv2.cvtColor(frame.color, cv2.COLOR_BGR2GRAY)
        raise CalibrationError("the camera gives depth only: the patterns need its colour (or infrared) image")

    def depth(self) -> np.ndarray | None:
        frame = self.camera.after(0.0)
        return frame.depth

    def close(self) -> None:
        self.camera.close()
        for w, warp in zip(self.outputs.windows, self.warps, strict=True):
            w.make_current()
            warp.release()
        for tex in self.textures.values():
            tex.release()
        if self._own_outputs:
            self.outputs.close()
        else:
            self.outputs.main.make_current()


def tracker_camera(scene: Scene) -> Pinhole:
    """The camera's lens and rough pose from the tracker's depth calibration."""
    from waterrock.tracking.calibrate import DepthCalibration, load_calibration

    path = scene.tracking.calibration
    if path is None:
        raise CalibrationUsageError(
            "calibrate --auto starts from the camera's rough pose: calibrate the tracker's depth camera first "
            "(`waterrock calibrate --source SPEC`) and set [tracking] calibration to the file it writes")
    try:
        cal = load_calibration(path)
    except (FileNotFoundError, ValueError) as err:
        raise CalibrationUsageError(str(err)) from None
    if not isinstance(cal, DepthCalibration):
        raise CalibrationUsageError(
            f"{path}: a floor homography has no camera pose: calibrate --auto needs a depth camera's calibration")
    i = cal.intrinsics
    R = cal.rotation.T  # the tracker's is camera -> scene
    return Pinhole((i.width, i.height), i.matrix(), R, -R @ cal.translation)


def write_tracker_pose(scene: Scene, camera: Pinhole) -> Path:
    """The tracker's depth calibration with the camera's pose that --auto solved on the rock (the
    lens kept), so that a visitor's obstacle lands where they stand; the old file is kept as
    ``<name>.previous.json``."""
    from waterrock import files
    from waterrock.tracking.calibrate import DepthCalibration, load_calibration, save_calibration

    path = scene.tracking.calibration
    old = load_calibration(path)
    if not isinstance(old, DepthCalibration):
        raise CalibrationUsageError(f"{path}: not a depth calibration")
    files.write_bytes(path.with_name(path.name.removesuffix(".json") + ".previous.json"), path.read_bytes())
    return save_calibration(DepthCalibration(old.intrinsics, camera.R.T, camera.centre), path)


# --- the commands --------------------------------------------------------------------------------


def _scene_rock(scene: Scene):
    from waterrock.render.command import scene_rock

    mesh = scene_rock(scene)
    if mesh is None:
        raise CalibrationUsageError(
            f"{scene.path}: the scene has no [rock] mesh to calibrate the projectors on: keep the corner pins")
    return mesh


def open_rig(scene: Scene, rig: str, source: str | None, monitors: list[int] | None, settle: float,
             drift_px: float = 0.0):
    """The rig, its outputs' sizes and the camera's rough pose."""
    mesh = _scene_rock(scene)
    if rig == "virtual":
        from waterrock.procam.rig import VirtualRig

        projectors, camera, rough = virtual_devices(mesh, len(scene.projection.outputs))
        if drift_px:
            projectors[0] = projectors[0].moved((drift_px, 0.0))
        r = VirtualRig(mesh, projectors, camera)
        return r, {i: p.size for i, p in enumerate(projectors)}, rough, mesh
    from waterrock.tracking.sources import open_source, source_from_settings

    rough = tracker_camera(scene)
    src = open_source(source, realtime=True) if source else source_from_settings(scene.tracking)
    r = ScreenRig(scene, src, monitors, settle)
    return r, r.sizes, rough, mesh


def _close(rig) -> None:
    (getattr(rig, "close", None) or rig.release)()


def run_auto(scene: Scene, rig: str = "screen", source: str | None = None, monitors: list[int] | None = None,
             out: Path | None = None, settle: float = 0.3) -> int:
    """Calibrate, write the calibration beside the scene (the old one kept), and a residual
    picture per output. 0 on success; 1 with the reason when the calibration cannot be solved."""
    r, sizes, rough, mesh = open_rig(scene, rig, source, monitors, settle)
    try:
        start = time.perf_counter()
        try:
            result = auto.calibrate(r, sizes, mesh, rough)
        except CalibrationError as err:
            print(f"calibration failed, nothing written: {err}")
            return 1
        seconds = time.perf_counter() - start
    finally:
        _close(r)
    path = Path(out) if out is not None else default_procam_path(scene.path)
    save_procam(result.calibration, path)
    import cv2

    cam = result.calibration.camera
    print(f"camera: pose on the rock {1000 * result.camera_rms_m:.1f} mm RMS, at "
          f"({', '.join(f'{v:.3f}' for v in cam.centre)}) m")
    for o in result.outputs:
        c = result.calibration.outputs[o.output]
        picture = path.with_name(f"{path.name.removesuffix('.json')}.output{o.output}.residual.png")
        cv2.imwrite(str(picture), auto.residual_picture(o, o.white))
        print(f"output {o.output}: {len(o.pairs.camera)} pairs, reprojection {c.rms_px:.3f} px RMS, "
              f"{len(c.dots_camera)} reference dots; residual picture {picture}")
    if rig == "screen":
        print(f"the tracker's camera pose, refined on the rock: {write_tracker_pose(scene, cam)}")
    print(f"calibration written to {path} in {seconds:.1f} s"
          + ("" if scene_procam_path(scene) in (path, None) else
             f" (the scene's [projection] calibration names {scene_procam_path(scene)}: point it here to use it)"))
    return 0


def run_check(scene: Scene, rig: str = "screen", source: str | None = None, monitors: list[int] | None = None,
              calibration: Path | None = None, settle: float = 0.3, drift_px: float = 0.0) -> int:
    """Measure each output's drift, log it, warn above the scene's ``drift_warn_px``: 0 when
    every output is within it, 1 otherwise."""
    path = calibration or scene_procam_path(scene) or default_procam_path(scene.path)
    try:
        cal = load_procam(path)
    except (FileNotFoundError, ValueError) as err:
        raise CalibrationUsageError(str(err)) from None
    r, sizes, _, _ = open_rig(scene, rig, source, monitors, settle, drift_px=drift_px)
    try:
        report = auto.self_check(r, cal, sizes)
    finally:
        _close(r)
    warn = scene.projection.drift_warn_px
    rc = 0
    for d in report:
        line = d.describe(warn)
        if not d.measured or d.median_px > warn:
            log.warning("calibration check: %s", line)
            rc = 1
        else:
            log.info("calibration check: %s", line)
        print(line)
    return rc


# --- the nightly check in a running projection ---------------------------------------------------


class NightlyCheck:
    """The frame loop's once-a-second callback that, when the local time passes the scene's
    ``[projection] check_time``, measures the calibrated outputs' drift on the running
    projection's own windows: the tracker hands the camera over, each output shows its dots for
    a moment (the water stops for those seconds), the drift is logged (a warning over
    ``drift_warn_px``), and the tracker starts again. Once a night; never at start, even past
    the time; a failure is logged and the show goes on."""

    def __init__(self, scene: Scene, outputs, inputs, clock=None, settle: float = 0.3):
        import datetime

        self.scene, self.outputs, self.inputs, self.settle = scene, outputs, inputs, settle
        self.clock = clock or datetime.datetime.now
        hh, mm = (int(x) for x in scene.projection.check_time.split(":"))
        self.at = (hh, mm)
        self._last = self.clock()
        self.report: list | None = None  # the last check's drifts

    def due(self, now) -> bool:
        target = now.replace(hour=self.at[0], minute=self.at[1], second=0, microsecond=0)
        return self._last < target <= now

    def __call__(self, _loop=None) -> None:
        now = self.clock()
        due = self.due(now)
        self._last = now
        if due:
            self.run()

    def run(self) -> None:
        from waterrock.tracking.sources import source_from_settings

        path = scene_procam_path(self.scene)
        if path is None:
            log.warning("nightly calibration check at %02d:%02d: the scene has no projector calibration", *self.at)
            return
        try:
            cal = load_procam(path)
        except (FileNotFoundError, ValueError) as err:
            log.error("nightly calibration check: %s", err)
            return
        warn = self.scene.projection.drift_warn_px
        log.info("nightly calibration check: %d outputs, the water pauses for a few seconds", len(cal.outputs))
        try:
            with self.inputs.camera_handed_over():
                settings = self.scene.tracking.model_copy(update={"realtime": True})
                rig = ScreenRig(self.scene, source_from_settings(settings), settle=self.settle, outputs=self.outputs)
                try:
                    self.report = auto.self_check(rig, cal, rig.sizes)
                finally:
                    rig.close()
        except Exception as err:  # noqa: BLE001 - the show goes on; the check says why it could not run
            log.error("nightly calibration check could not run: %s: %s", type(err).__name__, err)
            return
        for d in self.report:
            if not d.measured or d.median_px > warn:
                log.warning("nightly calibration check: %s", d.describe(warn))
            else:
                log.info("nightly calibration check: %s", d.describe(warn))
