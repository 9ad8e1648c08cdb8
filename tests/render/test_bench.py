"""The render benchmark runs and reports what `waterrock bench render` will print."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_render.py"


@pytest.mark.gl
def test_run_benchmark_small(gl_ctx, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_render", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--sizes", "1000", "--resolution", "160", "90", "--repeat", "1",
                         "--json", str(tmp_path / "r.json")])
    (row,) = report["results"]
    assert row["segments"] >= 1000 and row["lines_ms"] > 0 and row["gl_lines_ms"] > 0
    assert (tmp_path / "r.json").exists()
