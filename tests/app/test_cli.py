"""The `waterrock` command end to end in a subprocess: bad input, the headless fallback, render."""

from __future__ import annotations

import cv2
import pytest

from tests.app.app_helpers import NO_DISPLAY, run_cli
from waterrock.app.cli import _with_command, build_parser


def _one_line_error(r, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    err = r.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("waterrock: error:")
    for n in needles:
        assert n in err, err


def test_unknown_scene_name():
    r = run_cli("run", "--scene", "no_such_scene", env=NO_DISPLAY)
    _one_line_error(r, "no_such_scene", "shipped")


def test_missing_scene_file(tmp_path):
    r = run_cli("render", "--scene", str(tmp_path / "gone.toml"), "--seconds", "1", "--out", str(tmp_path))
    _one_line_error(r, "gone.toml", "not found")


def test_scene_with_unknown_key(tmp_path, tiny_scene):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        tiny_scene.read_text().replace("max_particles = 1500", "max_particles = 1500\nbad_key = 3")
    )
    r = run_cli("--scene", str(bad), env=NO_DISPLAY)  # no subcommand: `run`
    _one_line_error(r, "bad.toml", "fluid.bad_key", "unknown key")


def test_scene_with_invalid_toml(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[domain\nlower = 1\n")
    r = run_cli("run", "--scene", str(bad), env=NO_DISPLAY)
    _one_line_error(r, "broken.toml", "TOML")


def test_scene_with_bad_value(tmp_path, tiny_scene):
    bad = tmp_path / "neg.toml"
    bad.write_text(tiny_scene.read_text().replace("particle_radius = 0.015", "particle_radius = -1"))
    r = run_cli("run", "--scene", str(bad), env=NO_DISPLAY)
    _one_line_error(r, "neg.toml", "fluid.particle_radius")


def test_unknown_arch(tiny_scene):
    r = run_cli("run", "--scene", str(tiny_scene), "--arch", "quantum", env=NO_DISPLAY)
    _one_line_error(r, "quantum", "cpu")


def test_bench_rejects_bad_sizes():
    r = run_cli("bench", "render", "--sizes", "many")
    assert r.returncode == 2
    assert "--sizes" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, command",
    [
        ([], "run"),
        (["-v"], "run"),
        (["--log-file", "x.log", "--scene", "s"], "run"),
        (["render", "--seconds", "1", "--out", "o"], "render"),
        (["-v", "bench", "render"], "bench"),
    ],
)
def test_default_command_is_run(argv, command):
    args = build_parser().parse_args(_with_command(argv))
    assert args.command == command


def test_headless_fallback_prints_stats(tiny_scene, tmp_path):
    """No display: says so on stderr, runs headless, prints per-second stats, saves the picture."""
    shot = tmp_path / "headless.png"
    r = run_cli(
        "run",
        "--scene",
        str(tiny_scene),
        "--arch",
        "cpu",
        "--seconds",
        "2.5",
        "--screenshot",
        str(shot),
        env=NO_DISPLAY,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cannot open a window: no display" in r.stderr and "running headless" in r.stderr
    stats = [ln for ln in r.stdout.splitlines() if ln.startswith("t=")]
    assert len(stats) >= 2, r.stdout
    for key in ("fps", "solve", "snapshot", "render", "particles", "tracker"):
        assert key in stats[-1]
    assert int(stats[-1].split("particles")[1].split()[0]) > 500
    img = cv2.imread(str(shot))
    assert img is not None and img.shape == (240, 320, 3)


def test_render_writes_png_frames(tiny_scene, tmp_path):
    out = tmp_path / "frames"
    r = run_cli(
        "render",
        "--scene",
        str(tiny_scene),
        "--arch",
        "cpu",
        "--seconds",
        "0.5",
        "--fps",
        "20",
        "--resolution",
        "160",
        "120",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 10, r.stdout
    assert "wrote 10 frames" in r.stdout
    last = cv2.imread(str(frames[-1]))
    assert last.shape == (120, 160, 3)
    assert (last.max(axis=-1) > 40).sum() > 20  # water lines were drawn


def test_bench_runs_a_benchmark():
    r = run_cli("bench", "render", "--sizes", "1000", "--resolution", "64x64", "--repeat", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "render benchmark, 64x64" in r.stdout and "segments" in r.stdout
