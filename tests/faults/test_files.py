"""Files that survive a power cut: no save tears a file, a torn file is named and the tracker
runs on without it, and a recording cut short by Ctrl-C is a recording."""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from tests.app.app_helpers import run_cli
from waterrock import files
from waterrock.scene import ProjectionOutputs, ProjectorOutput, load_scene, save_projection
from waterrock.tracking.calibrate import load_calibration, save_calibration
from waterrock.tracking.frame import Frame
from waterrock.tracking.record import record
from waterrock.tracking.runner import TrackerRunner
from waterrock.tracking.segment import DepthBackground
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import DepthRecordingSource, FrameSource
from waterrock.tracking.synthetic import SyntheticSource

SCENE = """\
# the venue's scene: its comments must survive a warp save
name = "venue"
[domain]
lower = [0.0, 0.0, 0.0]
upper = [1.0, 1.0, 1.0]
[tracking]
source = "none"
"""


def _projection(k: int) -> ProjectionOutputs:
    """A different, valid warp for each save, so two saves never write the same text."""
    d = 0.001 * (k % 50)
    corners = ((d, d), (1.0 - d, 0.0), (1.0, 1.0 - d), (0.0, 1.0))
    return ProjectionOutputs(outputs=[ProjectorOutput(corners=corners)] * (1 + k % 3))


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- two saves at once ---------------------------------------------------------------------


def _save(path, k: int, start: threading.Barrier, failures: list[str]) -> None:
    start.wait()
    try:
        save_projection(path, _projection(k))
    except Exception as err:  # noqa: BLE001 - every failure is the finding
        failures.append(f"save {k}: {type(err).__name__}: {err}")


def test_two_saves_of_the_scene_at_once_never_leave_it_unloadable(tmp_path):
    """Two warp saves at the same moment (the editor on two outputs, or two processes): each may
    win, but the scene and its backup always load, neither save fails, and no temporary is left.
    With one fixed temporary name for both, 1 in 5 such trials left the scene unloadable."""
    path = tmp_path / "venue.toml"
    path.write_text(SCENE, encoding="utf-8")
    failures: list[str] = []
    for trial in range(40):
        start = threading.Barrier(2)
        threads = [threading.Thread(target=_save, args=(path, 2 * trial + i, start, failures)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in (path, path.with_name(path.name + ".bak")):
            try:
                load_scene(p)
            except Exception as err:  # noqa: BLE001
                failures.append(f"trial {trial}: {p.name} unloadable: {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures[:5])
    assert _leftovers(tmp_path) == []
    assert path.read_text(encoding="utf-8").startswith("# the venue's scene")


# --- a save cut short ----------------------------------------------------------------------


@contextlib.contextmanager
def disk_full_after(nbytes: int) -> Iterator[None]:
    """Writes past ``nbytes`` fail with EFBIG, as on a disk that fills mid-write (a real
    filesystem limit, RLIMIT_FSIZE, not a mock); SIGXFSZ ignored so that the write raises."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def _calibration_round(path):
    cal = SyntheticSource("walk", frames=1).calibration
    save_calibration(cal, path)
    return lambda: save_calibration(cal, path), lambda: load_calibration(path).to_dict() == cal.to_dict()


def _background_round(path):
    src = SyntheticSource("walk", frames=1)
    bg = DepthBackground.learn([src.render(i) for i in range(3)])
    bg.save(path)

    def same() -> bool:
        back = DepthBackground.load(path)
        return np.array_equal(back.depth, bg.depth) and np.array_equal(back.noise, bg.noise)

    return lambda: bg.save(path), same


@pytest.mark.parametrize("kind, name", [(_calibration_round, "venue.calibration.json"), (_background_round, "bg.npz")])
def test_a_save_cut_short_by_a_full_disk_leaves_the_old_file_whole(tmp_path, kind, name):
    """The calibration and the background were written in place: a disk that filled during the
    save left half a file, and the tracker without it at the next start."""
    path = tmp_path / name
    save_again, still_whole = kind(path)
    with disk_full_after(64), pytest.raises(OSError):
        save_again()
    assert still_whole(), f"{name}: the old file was torn by a failed save"
    assert _leftovers(tmp_path) == []


# --- a torn file at start ------------------------------------------------------------------


def _torn(path, good: bytes, keep: float) -> None:
    path.write_bytes(good[: int(len(good) * keep)])


def _tear_calibration(tmp_path, keep):
    path = tmp_path / "venue.calibration.json"
    save_calibration(SyntheticSource("walk", frames=1).calibration, path)
    _torn(path, path.read_bytes(), keep)
    return {"calibration": path}, path


def _tear_background(tmp_path, keep):
    path = tmp_path / "bg.npz"
    src = SyntheticSource("walk", frames=1)
    DepthBackground.learn([src.render(i) for i in range(3)]).save(path)
    _torn(path, path.read_bytes(), keep)
    return {"background_file": path}, path


def _unwritable_background(tmp_path, keep):
    """A background that cannot be saved (its folder is a file): learned, kept in memory."""
    (tmp_path / "not-a-folder").write_text("x")
    path = tmp_path / "not-a-folder" / "bg.npz"
    return {"background_file": path}, path


@pytest.mark.parametrize("fault, keep", [(_tear_calibration, 0.0), (_tear_calibration, 0.5), (_tear_background, 0.0),
                                         (_tear_background, 0.5), (_unwritable_background, None)])
def test_a_torn_file_is_named_and_the_tracker_runs_on_without_it(tmp_path, caplog, fault, keep):
    """An empty or half-written calibration or background made the pipeline raise on the first
    frame, every time: the tracker stayed 'reconnecting' with no frames, across restarts, and
    the error did not name the file. Now one warning names it, and the tracker runs with the
    default: the source's own calibration, a background learned afresh."""
    overrides, path = fault(tmp_path, keep)
    walk = SyntheticSource("walk", loop=True)
    settings = TrackingSettings(touch_plane=walk.script.touch_plane, background_frames=3, **overrides)
    caplog.set_level(logging.WARNING)
    with TrackerRunner(lambda: walk, settings) as runner:
        end = time.monotonic() + 30.0
        while time.monotonic() < end and not (runner.state().frames >= 20 and len(runner.latest()) == 1):
            time.sleep(0.01)
        st = runner.state()
    assert st.reconnects == 0 and st.frames >= 20, f"tracker did not run on: {st}"
    assert len(runner.latest()) == 1, "the walker is found with the default in place of the file"
    named = [r for r in caplog.records if str(path) in r.getMessage()]
    assert len(named) == 1 and "\n" not in named[0].getMessage(), [r.getMessage() for r in caplog.records]


# --- recordings ----------------------------------------------------------------------------


class Interrupted(FrameSource):
    """The first ``n`` frames of a walk, then Ctrl-C (KeyboardInterrupt, as the terminal sends it)."""

    def __init__(self, n: int) -> None:
        self.inner = SyntheticSource("walk", loop=False, frames=n)
        self.calibration = self.inner.calibration
        self.name = "walk-then-ctrl-c"

    def __iter__(self) -> Iterator[Frame]:
        yield from self.inner
        raise KeyboardInterrupt


@pytest.mark.parametrize("name, n", [("night.npz", 0), ("night.npz", 1), ("night.npz", 7), ("night", 1), ("night", 7)])
def test_a_recording_interrupted_by_ctrl_c_keeps_its_frames(tmp_path, name, n):
    """Ctrl-C during `waterrock record` saved nothing to a .npz, and left a folder of PNGs without
    its meta.json (the calibration lost). Now what was recorded is a recording, and the
    interrupt still stops the command. (A folder of no frames is not a recording that
    DepthRecordingSource reads: np.loadtxt gives an empty index the wrong shape.)"""
    out = tmp_path / name
    with pytest.raises(KeyboardInterrupt):
        record(Interrupted(n), out, frames=100)
    back = DepthRecordingSource(out, loop=False)
    replay = list(back)
    original = list(SyntheticSource("walk", loop=False, frames=n))
    assert len(replay) == n
    for a, b in zip(original, replay, strict=True):
        assert a.timestamp == b.timestamp and a.index == b.index
        np.testing.assert_array_equal(a.depth, b.depth)
    assert back.meta["frames"] == n
    np.testing.assert_allclose(back.calibration.rotation, Interrupted(1).calibration.rotation)
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == [name]


class Steady(FrameSource):
    """``n`` depth frames of 320 x 240, each a fresh array, as a camera delivers them."""

    shape = (240, 320)

    def __init__(self, n: int) -> None:
        self.n = n
        self.name = "steady"

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            yield Frame(i / 30.0, depth=np.full(self.shape, 1000 + i, np.uint16), index=i)


def test_memory_stays_flat_while_recording_to_npz(tmp_path):
    """A .npz recording held every frame in memory (about 36 MB a second of a 640 x 480 RGB-D
    camera) and then stacked them all once more. Its peak must not grow with its length: here
    under 16 frames' worth for 150 frames."""
    frame_bytes = Steady.shape[0] * Steady.shape[1] * 2
    tracemalloc.start()
    try:
        record(Steady(150), tmp_path / "long.npz", frames=150)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * frame_bytes, f"peak {peak / frame_bytes:.1f} frames' worth"
    back = list(DepthRecordingSource(tmp_path / "long.npz", loop=False))
    assert len(back) == 150 and int(back[-1].depth[0, 0]) == 1149


def test_the_helper_keeps_the_old_file_whole_through_an_interrupt_and_keeps_its_mode(tmp_path):
    """files.replacing: Ctrl-C in the middle of a write leaves the old file and no temporary; a
    file replaced keeps its permissions (mkstemp's 0600 would hide a scene from other users)."""
    path = tmp_path / "scene.toml"
    path.write_text("old\n")
    path.chmod(0o644)
    with pytest.raises(KeyboardInterrupt), files.replacing(path) as f:
        f.write(b"half of the n")
        raise KeyboardInterrupt
    assert path.read_text() == "old\n" and _leftovers(tmp_path) == []
    files.write_text(path, "new\n")
    assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o644


def test_a_warp_save_over_a_torn_scene_file_is_refused_not_a_crash(tmp_path, caplog):
    """The scene file torn on disk (an editor's save cut short) while the projectors run: Ctrl+S
    in the warp editor raised TOMLDecodeError out of the key handler and ended the show. Now
    the save is refused in one line naming the file, and the torn file is left for a person."""
    from waterrock.app.warp_edit import WarpEditor

    path = tmp_path / "venue.toml"
    path.write_text(SCENE, encoding="utf-8")
    editor = WarpEditor(load_scene(path).projection, path)
    torn = SCENE[: SCENE.index("upper") + 9]
    path.write_text(torn, encoding="utf-8")
    editor.projection, editor.dirty = _projection(1), True
    caplog.set_level(logging.ERROR)
    assert editor.save() is False
    assert [r.getMessage().count(str(path)) for r in caplog.records] == [1]
    assert path.read_text(encoding="utf-8") == torn and _leftovers(tmp_path) == []


class Resized(Steady):
    """A camera that switches to another size for one frame mid-recording."""

    def __iter__(self) -> Iterator[Frame]:
        for f in super().__iter__():
            yield Frame(f.timestamp, depth=f.depth[::2, ::2].copy(), index=f.index) if f.index == 2 else f


def test_a_frame_of_another_size_is_left_out_not_the_whole_npz_recording(tmp_path):
    """np.stack of frames of two sizes raised at the end of a .npz recording, and nothing was
    saved. Now the odd frame is left out (the archive holds one array per stream)."""
    assert record(Resized(5), tmp_path / "r.npz", frames=5) == 4
    back = list(DepthRecordingSource(tmp_path / "r.npz", loop=False))
    assert [int(f.depth[0, 0]) for f in back] == [1000, 1001, 1003, 1004]


@pytest.mark.parametrize("tail", ["", "7 0.2", "\0" * 64], ids=["no frame", "torn line", "zeros after a power cut"])
def test_a_folder_recording_with_no_frames_or_a_torn_last_index_line_reads(tmp_path, tail):
    """A folder recording stopped by Ctrl-C right after it started (an empty timestamps.txt) did
    not read back: np.loadtxt gave the empty index the wrong shape. Nor did one whose index a
    power cut left with a torn last line. Only the lines written whole count."""
    out = tmp_path / "night"
    n = 0 if tail == "" else 7
    with pytest.raises(KeyboardInterrupt):
        record(Interrupted(n), out, frames=100)
    with (out / "timestamps.txt").open("a", encoding="utf-8") as f:
        f.write(tail)
    back = DepthRecordingSource(out, loop=False)
    assert len(back) == n and back.meta["frames"] == n
    assert [f.index for f in back] == list(range(n))


def _scratch(folder) -> list:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".frames"))


def _record_until_frames(out, frames: int) -> subprocess.Popen:
    """`waterrock record synthetic OUT --seconds 30` in a subprocess, once ``frames`` depth frames
    of 640 x 480 are spooled to its scratch folder."""
    before = set(_scratch(out.parent))
    proc = subprocess.Popen([sys.executable, "-m", "waterrock.app.cli", "record", "synthetic", str(out),
                             "--seconds", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None:
        spooled = [d / "depth" for d in set(_scratch(out.parent)) - before if (d / "depth").exists()]
        if spooled and spooled[0].stat().st_size >= frames * 640 * 480 * 2:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {frames} frames spooled (rc {proc.poll()}): {proc.communicate()[1][-2000:]}")


def test_sigterm_during_record_keeps_the_frames_so_far(tmp_path):
    """SIGTERM (systemd stopping it, `kill`) ended `waterrock record` at once: no .npz, and a
    hidden scratch folder of frames left behind. Now it ends the recording as Ctrl-C does."""
    out = tmp_path / "night.npz"
    proc = _record_until_frames(out, 10)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    back = DepthRecordingSource(out, loop=False)
    assert len(back) >= 10 and back.meta["frames"] == len(back)
    assert [f.index for f in back] == list(range(len(back)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night.npz"]


def test_the_next_record_removes_the_scratch_of_one_that_died(tmp_path):
    """A recording killed outright (SIGKILL, a power cut) leaves its scratch folder of frames,
    hundreds of MB a minute, hidden beside the output. The next `waterrock record` to the same
    output removes it (and leaves alone the scratch of one still running)."""
    out = tmp_path / "night.npz"
    died = _record_until_frames(out, 3)
    died.kill()
    died.communicate(timeout=60)
    (dead,) = _scratch(tmp_path)
    running = _record_until_frames(out, 1)
    try:
        (live,) = set(_scratch(tmp_path)) - {dead}
        done = run_cli("record", "synthetic", str(out), "--frames", "5")
        assert done.returncode == 0, done.stderr[-2000:]
        assert _scratch(tmp_path) == [live]
    finally:
        running.kill()
        running.communicate(timeout=60)
    assert len(DepthRecordingSource(out, loop=False)) == 5


def test_a_screenshot_cut_short_by_a_full_disk_leaves_the_old_one_whole(tmp_path):
    """Screenshots (the S key, `--screenshot`) were written in place by cv2.imwrite: a disk that
    filled mid-write left a torn PNG in place of the last good one."""
    import cv2

    from waterrock.app.session import save_png

    path = tmp_path / "shot.png"
    rng = np.random.default_rng(0)
    old = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    save_png(old, path)
    with disk_full_after(256), pytest.raises(OSError):
        save_png(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), path)
    back = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert back is not None and np.array_equal(back[:, :, ::-1], old), "the old screenshot was torn"
    assert _leftovers(tmp_path) == []
