"""render_command end to end: a scene file with a rock, snapshots from the test generator; each
video codec written and read back with PyAV, and the codecs a file cannot take refused."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import pytest

from tests.app.app_helpers import run_cli
from tests.render.conftest import sphere_rock, waterfall
from waterrock.render.command import CODECS, DEFAULT_CODEC, has_encoder, render_command, video_codec

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


# --- codecs -----------------------------------------------------------------------------------


@pytest.mark.gl
@pytest.mark.parametrize("codec, name, decoder, tag", [
    ("h264", "out.mp4", "h264", "avc1"),
    (None, "out.mkv", "h264", None),  # the default for .mkv
    ("h264", "out.mov", "h264", "avc1"),
    (None, "out.mov", "prores", "apch"),  # the default for .mov
    ("prores", "out.mkv", "prores", None),
    ("hap", "out.mov", "hap", "Hap1"),  # DXT1 (hapenc.c's codec tags)
    ("hapq", "out.mov", "hap", "HapY"),  # YCoCg DXT5
    (None, "out.avi", "mjpeg", None),
])
def test_render_to_each_codec_plays_back(scene: Path, tmp_path: Path, codec, name, decoder, tag):
    encoder = CODECS[codec or DEFAULT_CODEC[Path(name).suffix]].encoder
    if not has_encoder(encoder):
        pytest.skip(f"this PyAV build's ffmpeg has no {encoder} encoder")
    out = tmp_path / name
    n = render_command(scene, 0.2, out, resolution=(64, 36), fps=20, codec=codec, snapshots=waterfall(500, 100))
    with av.open(str(out)) as video:
        stream = video.streams.video[0]
        assert stream.codec_context.name == decoder and (stream.width, stream.height) == (64, 36)
        assert tag is None or stream.codec_context.codec_tag == tag
        assert stream.average_rate == 20
        assert sum(1 for _ in video.decode(stream)) == n == 4


def test_hap_without_its_encoder_is_refused_by_name(tmp_path: Path):
    """PyAV's wheels may build ffmpeg without libsnappy, and so without the hap encoder (the one
    this was written against had none): asking for HAP then says so, before anything renders."""
    if has_encoder("hap"):
        pytest.skip("this PyAV build has the hap encoder: test_render_to_each_codec_plays_back writes HAP")
    for codec in ("hap", "hapq"):
        with pytest.raises(ValueError, match=f"codec {codec}: this PyAV build's ffmpeg has no hap encoder"):
            video_codec(tmp_path / "out.mov", codec, (64, 36))


@pytest.mark.parametrize("out, codec, size, needles", [
    ("out.mp4", "vp9", None, ["unknown codec 'vp9'", "h264, prores, hap, hapq, mjpeg"]),
    ("out.mp4", "prores", None, ["codec prores goes in a .mov or .mkv file, not out.mp4"]),
    ("out.mkv", "hap", None, ["codec hap goes in a .mov file, not out.mkv"]),
    ("frames", "h264", None, ["frames is a folder, for PNG frames; codec h264 needs a video file"]),
    ("out.mp4", None, (97, 54), ["codec h264 needs a width that divides by 2", "97x54"]),
])
def test_a_codec_the_output_cannot_take_is_refused(tmp_path: Path, out, codec, size, needles):
    with pytest.raises(ValueError) as err:
        video_codec(tmp_path / out, codec, size)
    assert all(n in str(err.value) for n in needles), str(err.value)
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("out, codec, needle", [
    ("out.mp4", "vp9", "unknown codec 'vp9'; give one of h264"),
    ("out.mp4", "hap", "codec hap goes in a .mov file, not out.mp4"),
    ("out.webm", None, "cannot write .webm files; give a video file (.mp4, .mkv, .mov, .avi)"),
])
def test_render_command_refuses_a_codec_or_suffix_in_one_line(scene: Path, tmp_path: Path, out, codec, needle):
    r = run_cli("render", "--scene", str(scene), "--seconds", "1", "--out", str(tmp_path / out),
                *(["--codec", codec] if codec else []))
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("waterrock: error:"), err
    assert needle in err and not (tmp_path / out).exists(), err
