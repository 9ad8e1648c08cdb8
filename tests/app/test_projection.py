"""`waterrock project`: warp calibration saved with the scene, monitor fallback, the outputs on a
private Xvfb display (in-process for the keys, end to end in a subprocess for the command)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from tests.app.app_helpers import run_cli
from waterrock.app.projection import Monitor, outputs_for, pick_monitor, picture_size
from waterrock.app.warp_edit import WarpEditor
from waterrock.render.warp import apply_homography, corner_homography, inverse_homography
from waterrock.scene import ProjectionOutputs, ProjectorOutput, load_scene, save_projection

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COMMENT = "# the venue's own note, which a save must keep"
WARPED = ((0.1, 0.05), (0.95, 0.15), (0.85, 0.95), (0.05, 0.8))
MONITORS = [
    Monitor(0, "DP-1", (0, 0), (1920, 1080), 60, True),
    Monitor(1, "HDMI-1", (1920, 0), (1280, 800), 60, False),
]


@pytest.fixture
def scene_file(tiny_scene, tmp_path):
    p = tmp_path / "venue.toml"
    p.write_text(f"{COMMENT}\n{tiny_scene.read_text()}", encoding="utf-8")
    return p


def _data_without_projection(path) -> dict:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.pop("projection", None)
    return data


# --- calibration in the scene file ------------------------------------------------------------


def test_warp_calibration_round_trips_through_the_scene_file(scene_file):
    before = _data_without_projection(scene_file)
    scene = load_scene(scene_file)
    editor = WarpEditor(outputs_for(scene.projection, [0, 1]), scene.path)
    editor.begin(1)
    editor.grab(0.02, 0.03)  # picks the nearest corner, top-left, and drags it
    editor.drag(0.1, 0.07)
    editor.next_corner()  # top-right
    editor.nudge(-12.0, 5.0, (1280, 800))
    assert editor.finish()  # leaving the edit saves
    saved = editor.outputs[1].corners
    assert saved[0] == (0.1, 0.07) and saved[1] == pytest.approx((1 - 12 / 1280, 5 / 800), abs=1e-6)

    again = load_scene(scene_file)
    assert [o.monitor for o in again.projection.outputs] == [0, 1]
    assert again.projection.outputs[1].corners == saved
    np.testing.assert_allclose(
        corner_homography(again.projection.outputs[1].corners), corner_homography(saved), atol=1e-12
    )
    np.testing.assert_allclose(corner_homography(again.projection.outputs[0].corners), np.eye(3), atol=1e-12)
    # everything else is as it was, the comments included
    assert _data_without_projection(scene_file) == before
    text = scene_file.read_text(encoding="utf-8")
    assert text.startswith(COMMENT) and scene_file.with_name("venue.toml.bak").is_file()

    # a second calibration replaces the section rather than adding another
    editor.begin(0)
    editor.reset()
    editor.nudge(3.0, 0.0, (1920, 1080))
    assert editor.save()
    text = scene_file.read_text(encoding="utf-8")
    assert text.count("[projection]") == 1 and text.count("[[projection.outputs]]") == 2
    assert load_scene(scene_file).projection == editor.projection


_HALL = """
# the hall, in metres
[domain]  # the whole room
lower = [0.0, 0.0, 0.0]
# the ceiling is low here
upper = [1.0, 1.0, 1.0]
"""
_CAMERA = """
# no camera yet
[tracking]
source = "none"  # the tracker comes later
# the end of the file
"""
# an operator's scenes: comments before, inside and after sections; dotted keys at the top, or a
# [projection] table of their own in the middle, commented on the keys a save keeps
DOTTED_SCENE = """\
# the venue's scene: every comment here must survive a warp save
name = "venue"  # as the operator calls it
render.exposure = 1.2  # brighter for the evening show
projection.check_time = "03:00"  # before the cleaners come
""" + _HALL + _CAMERA
TABLE_SCENE = """\
# the venue's scene: every comment here must survive a warp save
name = "venue"  # as the operator calls it
render.exposure = 1.2  # brighter for the evening show
""" + _HALL + """
# two projectors on the north wall
[projection]  # set up on the first night
check_time = "03:00"  # before the cleaners come
# the left one first
[[projection.outputs]]  # the left projector
monitor = 0  # DP-1
blend.right = 0.1  # the overlap
""" + _CAMERA


def _comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("text", [DOTTED_SCENE, TABLE_SCENE], ids=["dotted", "table"])
def test_a_saved_warp_keeps_every_comment_of_the_scene(tmp_path, text):
    path = tmp_path / "venue.toml"
    path.write_text(text, encoding="utf-8")
    before = _data_without_projection(path)
    two = [ProjectorOutput(monitor=0, corners=WARPED), ProjectorOutput(monitor=1)]
    save_projection(path, load_scene(path).projection.model_copy(update={"outputs": two}))
    saved = path.read_text(encoding="utf-8")
    assert [c for c in _comments(text) if c not in saved] == []
    assert path.with_name("venue.toml.bak").read_text(encoding="utf-8") == text
    assert _data_without_projection(path) == before
    again = load_scene(path)
    assert again.projection.outputs[0].corners == WARPED and again.projection.check_time == "03:00"
    assert again.render.exposure == 1.2 and len(again.projection.outputs) == 2

    # a save that drops the second output keeps them too (the comment lines above the next
    # section were filed under the dropped output, and went with it)
    save_projection(path, again.projection.model_copy(update={"outputs": again.projection.outputs[:1]}))
    assert [c for c in _comments(text) if c not in path.read_text(encoding="utf-8")] == []
    assert path.with_name("venue.toml.bak").read_text(encoding="utf-8") == saved
    assert len(load_scene(path).projection.outputs) == 1


def test_editor_refuses_a_folded_quad_and_cancel_restores(scene_file):
    scene = load_scene(scene_file)
    editor = WarpEditor(outputs_for(scene.projection, None), scene.path)
    editor.begin(0)
    editor.grab(0.0, 0.0)
    editor.drag(0.9, 0.9)  # top-left past the bottom-right: the picture would fold
    assert editor.outputs[0].corners[0] == (0.0, 0.0)
    editor.drag(0.2, 0.1)
    assert editor.outputs[0].corners[0] == (0.2, 0.1) and editor.dirty
    editor.cancel()
    assert editor.outputs[0].corners[0] == (0.0, 0.0) and editor.active is None
    assert "[projection]" not in scene_file.read_text(encoding="utf-8")  # nothing was written


def test_scene_rejects_bad_outputs(scene_file):
    from waterrock.scene import SceneError

    bad = scene_file.read_text() + "\n[[projection.outputs]]\ncorners = [[0, 0], [1, 1], [1, 0], [0, 1]]\n"
    scene_file.write_text(bad)
    with pytest.raises(SceneError, match="projection.outputs.0.*convex"):
        load_scene(scene_file)
    scene_file.write_text(bad.replace("corners = ", "blend = { left = 0.7 }\ncorners = "))
    with pytest.raises(SceneError, match="projection.outputs.0.blend.left"):
        load_scene(scene_file)


# --- monitors and outputs ---------------------------------------------------------------------


def test_missing_monitor_falls_back_to_the_primary_with_a_warning():
    assert pick_monitor(1, MONITORS) == (MONITORS[1], None)
    monitor, warning = pick_monitor(3, MONITORS)
    assert monitor is MONITORS[0]
    assert "monitor 3 is not connected" in warning
    assert "0 'DP-1' 1920x1080" in warning and "1 'HDMI-1' 1280x800" in warning  # those present
    assert "primary monitor 0" in warning


def test_outputs_for_the_command_line():
    scene_outputs = ProjectionOutputs(outputs=[ProjectorOutput(monitor=2, corners=WARPED)], vsync_output=0)
    assert outputs_for(ProjectionOutputs(), None).outputs == [ProjectorOutput()]
    chosen = outputs_for(scene_outputs, [1, 0])
    assert [o.monitor for o in chosen.outputs] == [1, 0]
    assert chosen.outputs[0].corners == WARPED and chosen.outputs[1].corners == ProjectorOutput().corners
    # two projectors side by side, overlapping by a fifth: the picture has both outputs' pixels
    left = ProjectorOutput(region=(0.0, 0.0, 0.6, 1.0))
    right = ProjectorOutput(region=(0.4, 0.0, 1.0, 1.0), monitor=1)
    assert picture_size([left, right], [(1920, 1080), (1920, 1080)]) == (3200, 1080)


# --- the outputs in a real window -------------------------------------------------------------


@pytest.fixture
def projection_view(scene_file, xvfb_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb_display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    from tests.app.test_loop import FakeSolver
    from waterrock.app.loop import FrameLoop
    from waterrock.app.projection import Outputs, ProjectionView

    scene = load_scene(scene_file)
    projection = outputs_for(scene.projection, [0])
    outputs = Outputs(projection)
    view = ProjectionView(outputs, scene, projection)
    view.loop = FrameLoop(FakeSolver(), None, view, realtime=False)
    yield view
    view.release()
    outputs.close()


@pytest.mark.gl
def test_warp_edit_keys_on_the_output(projection_view, scene_file):
    view = projection_view
    glfw = view.outputs.glfw
    window = view.outputs.windows[0]
    w, h = window.framebuffer_size()
    assert (w, h) == (1280, 720)  # fullscreen on the Xvfb screen
    assert glfw.get_window_attrib(window.handle, glfw.AUTO_ICONIFY) == 0
    assert glfw.get_input_mode(window.handle, glfw.CURSOR) == glfw.CURSOR_HIDDEN
    press = glfw.PRESS

    assert view.direct()  # a plain output: drawn straight to the screen, no warp pass
    view.on_key(0, glfw.KEY_W, press)
    assert view.editor.active == 0 and not view.direct()
    assert glfw.get_input_mode(window.handle, glfw.CURSOR) == glfw.CURSOR_NORMAL
    view.on_key(0, glfw.KEY_TAB, press)
    view.on_key(0, glfw.KEY_TAB, press)  # bottom-right
    view.on_key(0, glfw.KEY_LEFT, press, glfw.MOD_SHIFT)  # 10 px left
    view.on_key(0, glfw.KEY_UP, glfw.REPEAT)  # held: 1 px up, repeated
    corners = view.editor.outputs[0].corners
    assert corners[2] == pytest.approx((1 - 10 / w, 1 - 1 / h), abs=1e-6)

    view.render()  # the guides: a ring around the picked corner, in its colour
    img = view.read_output(window)
    x, y = int(corners[2][0] * w), int(corners[2][1] * h)
    ring = img[y - 16 : y + 1, x - 16 : x + 1].astype(int)
    assert np.any(np.all(np.abs(ring - (255, 89, 51)) <= 2, axis=-1))

    view.on_key(0, glfw.KEY_ENTER, press)  # save and leave
    assert view.editor.active is None and not view.editor.dirty
    assert glfw.get_input_mode(window.handle, glfw.CURSOR) == glfw.CURSOR_HIDDEN
    assert load_scene(scene_file).projection.outputs[0].corners == corners
    assert not view.direct()  # warped now
    view.on_key(0, glfw.KEY_Q, press)
    assert view.loop.stopping


@pytest.mark.gl
def test_projection_view_paints_on_the_rock(scene_file, xvfb_display, monkeypatch):
    """The outputs' view with output 0 in the projector calibration, the projector at half the
    window's pixels: not drawn directly, light only on the rock (render/onrock.py), its grid
    edited with the arrows (grid mode from the start: there are no corners on the rock) and
    saved on leaving."""
    monkeypatch.setenv("DISPLAY", xvfb_display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    from tests.app.test_loop import FakeSolver
    from tests.render.test_onrock import EYE, calibration, silhouette
    from waterrock.app.loop import FrameLoop
    from waterrock.app.projection import Outputs, ProjectionView
    from waterrock.procam.model import Pinhole, save_procam
    from waterrock.render.command import scene_rock

    device = Pinhole.looking_at((640, 360), 40.0, EYE, (0.0, 0.25, 0.0))
    save_procam(calibration(device), scene_file.with_name("venue.procam.json"))
    scene = load_scene(scene_file)
    projection = outputs_for(scene.projection, [0])
    outputs = Outputs(projection)
    view = ProjectionView(outputs, scene, projection)
    try:
        view.loop = FrameLoop(FakeSolver(), None, view, realtime=False)
        window = outputs.windows[0]
        size = window.framebuffer_size()
        assert not view.direct()
        view.render()
        img = view.read_output(window)
        rock_mask = silhouette(device.resized(size), scene_rock(scene), size)
        grown = cv2.dilate(rock_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        lit = img.max(axis=-1) > 0
        assert lit.sum() > 0.5 * rock_mask.sum() and not lit[~grown].any()

        glfw = outputs.glfw
        view.on_key(0, glfw.KEY_W, glfw.PRESS)
        assert view.editor.grid_mode
        view.on_key(0, glfw.KEY_RIGHT, glfw.PRESS, glfw.MOD_SHIFT)  # the top-left grid point, 10 px
        assert view.editor.outputs[0].grid[0] == pytest.approx((10 / size[0], 0.0), abs=1e-6)
        view.render()  # through the grid warp, with its guides
        assert view.read_output(window).any()
        view.on_key(0, glfw.KEY_ENTER, glfw.PRESS)
        assert load_scene(scene_file).projection.outputs[0].grid[0] == pytest.approx((10 / size[0], 0.0), abs=1e-6)
        view.render()
    finally:
        view.release()
        outputs.close()


def _run_project(scene, tmp_path, display, *extra):
    shot = tmp_path / "out.png"
    log_file = tmp_path / "project.log"
    r = run_cli(
        "--log-file",
        str(log_file),
        "project",
        "--scene",
        str(scene),
        "--arch",
        "cpu",
        "--seconds",
        "2",
        "--screenshot",
        str(shot),
        *extra,
        env={"DISPLAY": display, "WAYLAND_DISPLAY": None},
        cwd=tmp_path,
    )
    return r, shot, log_file


@pytest.mark.gl
def test_project_draws_water_through_the_warp_and_quits(scene_file, xvfb_display, tmp_path):
    text = scene_file.read_text() + (
        f"\n[[projection.outputs]]\ncorners = {[list(c) for c in WARPED]}\nblend = {{ right = 0.2 }}\n"
    )
    scene_file.write_text(text)
    r, shot, log_file = _run_project(scene_file, tmp_path, xvfb_display)
    assert r.returncode == 0, r.stderr[-3000:]
    img = cv2.imread(str(shot))[:, :, ::-1].astype(int)  # RGB
    assert img.shape == (720, 1280, 3)

    # where each output pixel comes from in the picture (region shares), by the warp
    h, w = img.shape[:2]
    px = (np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 2) + 0.5) / (w, h)
    uv = apply_homography(inverse_homography(corner_homography(WARPED), WARPED), px).reshape(h, w, 2)
    inside = np.all((uv > 0.01) & (uv < 0.99), axis=-1)
    outside = np.any((uv < -0.01) | (uv > 1.01), axis=-1)
    assert np.all(img[outside] == 0), "outside the pinned quad the projector is black"

    background = np.round(np.array([0.010, 0.028, 0.070]) * 255)
    unblended = inside & (uv[..., 0] < 0.75)
    is_bg = np.all(np.abs(img - background) <= 3, axis=-1)
    lines = (img.max(axis=-1) >= 45) & (img[..., 2] > img[..., 0] + 5)
    rock = np.all(np.abs(img - np.array([0.10, 0.09, 0.08]) * 255) <= 12, axis=-1) & ~is_bg
    assert is_bg[unblended].mean() > 0.5
    assert lines[inside].sum() > 1000, lines.sum()
    assert rock[inside].sum() > 1000, rock.sum()
    assert not lines[outside].any()
    # the blended right edge fades to black: dimmer than the background near it
    edge = inside & (uv[..., 0] > 0.97) & (uv[..., 1] < 0.2)
    assert img[edge].max(axis=-1).mean() < 0.5 * background.max()

    log_text = log_file.read_text(encoding="utf-8")
    assert "output 0 on monitor 0" in log_text and "vsync" in log_text
    assert "stopped after" in log_text


@pytest.mark.gl
def test_project_runs_on_without_its_monitor_and_its_camera(scene_file, xvfb_display, tmp_path):
    """The venue's hardware gone at start, both at once (one run of the app): the output's monitor
    is not connected and the camera is not there. The picture goes to the primary monitor, the
    water runs without visitors."""
    scene_file.write_text(scene_file.read_text().replace('source = "none"', 'source = "camera"\ncamera_index = 9'))
    r, shot, log_file = _run_project(scene_file, tmp_path, xvfb_display, "--monitor", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "monitor 4 is not connected (monitors present: 0 'screen' 1280x720" in r.stderr
    assert "using the primary monitor 0" in r.stderr
    log_text = log_file.read_text(encoding="utf-8")
    assert "the tracker has no source (DeviceNotFound" in log_text
    assert "the water runs without visitors" in log_text
    img = cv2.imread(str(shot))[:, :, ::-1].astype(int)
    assert img.shape == (720, 1280, 3)
    assert ((img.max(axis=-1) >= 45) & (img[..., 2] > img[..., 0] + 5)).sum() > 300  # water drawn


def test_project_without_a_display_fails_for_the_boot_script_to_retry(scene_file):
    r = run_cli("project", "--scene", str(scene_file), env={"DISPLAY": None, "WAYLAND_DISPLAY": None})
    assert r.returncode == 1
    assert "cannot open the projection outputs: no display" in r.stderr
