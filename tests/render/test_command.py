"""render_command end to end: a scene file with a rock, snapshots from the test generator."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.render.conftest import sphere_rock, waterfall
from waterrock.render.command import render_command

SCENE = """\
name = "render test"
[domain]
lower = [-1.5, -1.5, -1.0]
upper = [1.5, 1.5, 1.0]
[rock]
mesh = "rock.obj"
[fluid]
max_particles = 500
[render]
resolution = [96, 54]
[render.trails]
share = 1.0
length = 8
[render.projection]
height = 2.6
"""


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    sphere_rock().export(tmp_path / "rock.obj")
    (tmp_path / "scene.toml").write_text(SCENE)
    return tmp_path / "scene.toml"


@pytest.mark.gl
def test_render_to_png_folder(scene: Path, tmp_path: Path):
    n = render_command(scene, 0.1, tmp_path / "frames", fps=30, snapshots=waterfall(500, 100))
    files = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert n == 3 and len(files) == 3
    assert cv2.imread(str(files[-1])).shape == (54, 96, 3)


@pytest.mark.gl
def test_render_to_mp4_at_a_chosen_resolution(scene: Path, tmp_path: Path):
    out = tmp_path / "out.mp4"
    n = render_command(scene, 0.2, out, resolution=(128, 72), fps=20, snapshots=waterfall(500, 100))
    assert n == 4 and out.stat().st_size > 0
    video = cv2.VideoCapture(str(out))
    ok, frame = video.read()
    video.release()
    assert ok and frame.shape == (72, 128, 3)


@pytest.mark.gl
def test_short_producer_ends_the_video_early(scene: Path, tmp_path: Path):
    assert render_command(scene, 10.0, tmp_path / "f", fps=30, snapshots=waterfall(500, 2)) == 2


def test_resolution_beyond_4k_is_refused(scene: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="resolution"):
        render_command(scene, 1.0, tmp_path / "f", resolution=(7680, 4320), snapshots=[])
