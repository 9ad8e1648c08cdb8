"""The [tracking] section: defaults everywhere, unknown keys rejected, paths resolved."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from waterrock.scene import SceneError, parse_scene
from waterrock.tracking.settings import TrackingSettings


def test_every_field_has_a_default():
    s = TrackingSettings()
    assert s.source == "synthetic" and s.osc_host == "127.0.0.1"


def test_unknown_keys_and_impossible_values_are_rejected():
    with pytest.raises(ValidationError):
        TrackingSettings(camera="0")
    with pytest.raises(ValidationError, match="max_height"):
        TrackingSettings(min_height=2.0, max_height=1.0)
    with pytest.raises(ValidationError, match="needs path"):
        TrackingSettings(source="video")


def test_relative_paths_resolve_against_the_scene_folder(tmp_path):
    scene = {
        "domain": {"lower": [-2, 0, -2], "upper": [2, 2, 2]},
        "tracking": {
            "source": "depth_recording",
            "path": "nights/friday.npz",
            "calibration": "venue.calibration.json",
        },
    }
    s = parse_scene(scene, tmp_path / "venue.toml").tracking
    assert s.path == (tmp_path / "nights/friday.npz").resolve()
    assert s.calibration == (tmp_path / "venue.calibration.json").resolve()
    assert TrackingSettings(path=Path("/abs/x.npz"), source="depth_recording").resolved(
        tmp_path
    ).path == Path("/abs/x.npz")


def test_scene_reports_bad_tracking_keys():
    with pytest.raises(SceneError, match="tracking.noise_k"):
        parse_scene({"domain": {"lower": [-2, 0, -2], "upper": [2, 2, 2]}, "tracking": {"noise_k": -1}})
