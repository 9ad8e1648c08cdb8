"""The pinhole device and the calibration file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waterrock.procam.model import (
    OutputCalibration,
    Pinhole,
    ProcamCalibration,
    load_procam,
    save_procam,
    scene_procam_path,
)
from waterrock.resources import REPO_ROOT
from waterrock.scene import load_scene


def _device(dist=(0.0,) * 5):
    return Pinhole.looking_at((640, 480), 50, [0.4, 1.5, 1.2], [0, 0.3, 0], shift=(0.02, 0.08), dist=dist)


def test_gl_matrix_puts_points_on_their_pixels():
    d = _device()
    pts = np.random.default_rng(0).uniform(-0.3, 0.3, (50, 3)) + [0, 0.3, 0]
    clip = np.c_[pts, np.ones(50)] @ d.gl_matrix(0.1, 10.0).T
    ndc = clip[:, :3] / clip[:, 3:]
    px = np.c_[(ndc[:, 0] + 1) / 2 * 640 - 0.5, (1 - ndc[:, 1]) / 2 * 480 - 0.5]
    assert np.abs(px - d.project(pts)).max() < 1e-9
    assert np.all(np.abs(ndc[:, 2]) < 1)


def test_rays_invert_projection_with_distortion():
    d = _device(dist=(-0.15, 0.05, 0.001, -0.002, 0.0))
    pts = np.random.default_rng(1).uniform(-0.3, 0.3, (50, 3)) + [0, 0.3, 0]
    ray = d.rays(d.project(pts))
    to = pts - d.centre
    assert np.abs(ray - to / np.linalg.norm(to, axis=1, keepdims=True)).max() < 1e-9


def test_bad_devices_are_refused():
    d = _device()
    with pytest.raises(ValueError, match="K has a NaN"):
        Pinhole(d.size, np.full((3, 3), np.nan), d.R, d.t)
    with pytest.raises(ValueError, match="proper rotation"):
        Pinhole(d.size, d.K, -d.R, d.t)


def test_save_keeps_the_previous_calibration_and_load_names_faults(tmp_path):
    path = tmp_path / "default.procam.json"
    first = ProcamCalibration(_device(), {0: OutputCalibration(_device(), 0.2)}, "first")
    save_procam(first, path)
    second = ProcamCalibration(_device(), {0: OutputCalibration(_device().moved((3, 0)), 0.3)}, "second")
    save_procam(second, path)
    assert load_procam(path).created == "second"
    previous = load_procam(tmp_path / "default.procam.previous.json")
    assert previous.created == "first" and previous.outputs[0].rms_px == 0.2
    assert np.allclose(load_procam(path).outputs[0].projector.K, second.outputs[0].projector.K)
    path.write_text(json.dumps({"kind": "depth"}))
    with pytest.raises(ValueError, match="not a projector calibration"):
        load_procam(path)
    path.write_text('{"kind": "procam", "camera"')
    with pytest.raises(ValueError, match="not a usable projector calibration"):
        load_procam(path)
    with pytest.raises(FileNotFoundError, match="calibrate --auto"):
        load_procam(tmp_path / "none.json")


def test_a_scene_finds_its_calibration_beside_it(tmp_path):
    scene = load_scene(REPO_ROOT / "scenes" / "default.toml", check_files=False)
    copy = tmp_path / "venue.toml"
    copy.write_text((scene.path).read_text().replace('"assets/boulder.obj"', f'"{scene.rock.mesh}"'))
    venue = load_scene(copy)
    assert scene_procam_path(venue) is None
    save_procam(ProcamCalibration(_device(), {}), tmp_path / "venue.procam.json")
    assert scene_procam_path(venue) == tmp_path / "venue.procam.json"
    off = venue.model_copy(update={"projection": venue.projection.model_copy(update={"on_rock": False})})
    assert scene_procam_path(off) is None


def test_the_projection_section_refuses_a_bad_check_time(tmp_path):
    from waterrock.scene import SceneError, parse_scene

    base = {"domain": {"lower": [0, 0, 0], "upper": [1, 1, 1]}}
    ok = parse_scene({**base, "projection": {"check_time": "03:30", "drift_warn_px": 0.5}})
    assert ok.projection.check_time == "03:30"
    with pytest.raises(SceneError, match=r"\[projection.check_time\]"):
        parse_scene({**base, "projection": {"check_time": "25:00"}})
    with pytest.raises(SceneError, match=r"\[projection.drift_warn_px\]"):
        parse_scene({**base, "projection": {"drift_warn_px": 0}})
