"""The tracker benchmark runs end to end (tiny sizes) and reports what it promises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tracker.py"


def test_bench_tracker_small(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_tracker", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    result = bench.main(["--sizes", "320x240", "--repeat", "5", "--json", str(out), "--beside-seconds", "0"])
    r = result["sizes"]["320x240"]
    assert r["depth"]["pipeline"]["n"] == 5 and r["depth"]["pipeline"]["median_ms"] > 0
    assert r["depth"]["obstacles"] >= 4  # the gathering: four visitors and a hand on the wall
    assert r["color"]["baseline_mog2_and_connected_components"]["median_ms"] > 0
    assert r["color"]["ratio_to_baseline"] > 0 and r["color"]["people_in_view"] >= 1
    assert result["latency_640x480_depth"]["frames"] >= 3
    assert json.loads(out.read_text())["goal_ms_640x480"] == 5.0
