"""``waterrock bench governor``: the app's real-time loop run with the frame-rate governor and
without it, alternating, and the console's services timed a frame (bench/governor.py). No
timing is judged here: the figures are in the closing notes and benchmarks/."""

from __future__ import annotations

from tests.app.app_helpers import TINY_SCENE
from tests.net.test_portals import free_port
from waterrock.bench import governor
from waterrock.bench.figures import figures


def test_both_runs_are_measured_each_second_and_the_console_is_timed(tmp_path):
    scene = tmp_path / "tiny.toml"
    scene.write_text(TINY_SCENE + f"\n[console]\nstatus_port = {free_port()}\nosc_port = {free_port()}\n"
                     f"oscquery_port = {free_port()}\nwatch_scene = false\n")
    result = governor.run_benchmark(str(scene), seconds=2.5, repeat=1, arch="cpu", log=lambda _: None)
    off, on = result["runs"]["off"][0], result["runs"]["on"][0]
    for run in (off, on):
        assert len(run["samples"]) >= 1 and run["fps_median"] > 0
        assert all(0.0 <= s["water_dropped"] <= 1.0 for s in run["samples"])
    assert all(s["level"] == 0 and s["scale"] == 1.0 for s in off["samples"])  # no governor: never a level
    assert result["speedup"] == on["fps_median"] / off["fps_median"]
    assert sorted(on["console_services"]) == ["OscControl", "StatusPage"] and "console_ms_per_frame" not in off
    assert result["console_ms_per_frame"] == on["console_ms_per_frame"] > 0
    text = governor.table(result)
    assert "with the governor" in text and "console (OSC control, status page)" in text
    assert "governor.tiny_waterfall.speedup" in figures({"governor": result})
