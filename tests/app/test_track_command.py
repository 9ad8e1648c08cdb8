"""`waterrock track`: the tracker alone on a source, as an operator runs it to tune a venue."""

from __future__ import annotations

import json

import cv2
import pytest

from tests.app.app_helpers import NO_DISPLAY, run_cli
from waterrock.tracking.synthetic import script


def test_track_a_synthetic_walk_writes_a_preview_and_a_true_summary(tmp_path):
    out, summary = tmp_path / "preview.mp4", tmp_path / "summary.json"
    r = run_cli("track", "synthetic:walk", "--frames", "75", "--out", str(out), "--json", str(summary))
    assert r.returncode == 0, r.stderr
    assert "ms a frame" in r.stdout and "ids" in r.stdout
    s = json.loads(summary.read_text())
    assert s["frames"] == 75 and s["skipped"] == 0
    assert s["ids"] == 1, s  # one person walking: one id
    truth = max(float((p.velocity(1.5) ** 2).sum() ** 0.5) for p in script("walk").people)
    assert abs(s["speed_median_m_s"] - truth) < 0.1 * truth, (s, truth)
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 75


def test_track_saves_the_empty_venue_for_the_scene(tmp_path):
    bg = tmp_path / "venue.npz"
    r = run_cli("track", "synthetic:walk", "--frames", "40", "--save-background", str(bg))
    assert r.returncode == 0, r.stderr
    assert bg.exists() and f"saved to {bg}" in r.stdout
    again = run_cli("track", "synthetic:walk", "--frames", "5", "--save-background", str(bg))
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("nonsense:thing",), "unknown source"),
        (("synthetic", "--out", "x.gif"), ".gif"),
        (("synthetic", "--frames", "0"), "--frames must be a positive number"),
        (("synthetic", "--save-background", "bg.png"), ".npz"),
        (("synthetic", "--scene", "no_such_scene"), "no_such_scene"),
    ],
)
def test_track_refuses_bad_input_in_one_line(tmp_path, args, says):
    r = run_cli("track", *args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_track_show_without_a_display_says_so():
    r = run_cli("track", "synthetic", "--show", env=NO_DISPLAY)
    assert r.returncode == 2 and "--show needs a window" in r.stderr and "--out" in r.stderr
