"""`waterrock bench procam` at tiny sizes: every figure is measured and real (positive times, the
decode agreeing with OpenCV's on every sampled pixel, a finite reprojection error), the table
and the JSON say so, and the regression guard gets its ratios. No timing is asserted."""

from __future__ import annotations

import json
import math

import pytest

from tests.app.app_helpers import run_cli
from waterrock.app.cli import build_parser
from waterrock.bench import procam

pytestmark = pytest.mark.gl

CAMERA, PROJECTOR = (320, 240), (256, 192)
STATS = {"median_ms", "iqr_ms", "min_ms", "max_ms", "n"}


def test_options_parse():
    a = build_parser().parse_args(["bench", "procam", "--sizes", "320x240", "256x192", "--repeat", "1"])
    assert (a.which, a.sizes, a.repeat) == ("procam", ["320x240", "256x192"], 1)


def test_a_tiny_run_measures_every_figure(gl_ctx):
    r = procam.run_benchmark(CAMERA, PROJECTOR, repeat=1, render_repeat=1, sample=300, ctx=gl_ctx, log=lambda m: None)
    assert r["camera"] == list(CAMERA) and r["projector"] == list(PROJECTOR) and r["renderer"]
    assert r["meets_goal"] is None  # not the goal's sizes
    d = r["decode"]
    assert STATS <= set(d["stats"]) and d["stats"]["n"] == 1
    assert d["frames"] == 2 * sum(procam.graycode.bit_counts(PROJECTOR)) + 2
    assert d["seconds"] > 0 and d["capture_s"] > 0 and 0 < d["share_valid"] <= d["share_lit"] <= 1
    ref = d["reference"]
    assert ref["sample"] == 300 and ref["us_per_pixel"] > 0 and ref["share_decoded"] > 0.5
    assert ref["seconds_frame"] > ref["seconds_lit"] > 0 and d["speedup"] > 0
    assert d["agreement"] == 1.0 and d["disagreements"] == 0  # the same decode as OpenCV's, pixel for pixel
    s = r["solve"]
    for k in ("camera_pose_s", "correspondences_s", "rock_points_s", "projector_s"):
        assert s[k] > 0, k
    assert math.isclose(s["total_s"], sum(s[k] for k in ("camera_pose_s", "correspondences_s", "rock_points_s",
                                                          "projector_s")))
    assert s["pairs"] >= s["pairs_kept"] >= 200
    assert math.isfinite(s["reprojection_rms_px"]) and s["reprojection_rms_px"] < 1.0
    assert s["camera_error_cm"] < 1.0 and s["camera_error_deg"] < 0.5  # the ICP found the pose from 6 cm off
    g = r["render"]
    assert g["size"] == list(PROJECTOR) and g["onrock"]["median_ms"] > 0 and g["warp"]["median_ms"] > 0
    assert g["ratio"] > 0 and 0.05 < g["onrock_share_lit"] < 1.0  # the rock was painted, not the whole output
    text = procam.table(r)
    assert "graycode.decode" in text and "OnRockPass.draw" in text and "not judged" in text
    figs = procam.figures(r)
    assert set(figs) == {"procam.c320x240.p256x192.decode_speedup", "procam.c320x240.p256x192.warp_over_onrock"}
    assert all(f["value"] > 0 for f in figs.values())


def test_the_bench_command_runs_it(gl_ctx, tmp_path):
    out = tmp_path / "procam.json"
    r = run_cli("bench", "procam", "--sizes", "320x240", "256x192", "--repeat", "1", "--json", str(out),
                timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "procam on the simulated rig" in r.stdout
    res = json.loads(out.read_text())
    assert res["which"] == ["procam"] and res["procam"]["decode"]["agreement"] == 1.0
    assert "procam.c320x240.p256x192.decode_speedup" in res["figures"]
    bad = run_cli("bench", "procam", "--sizes", "320x240", timeout=120)
    assert bad.returncode == 2 and "camera's and the projector's WxH" in bad.stderr
