"""`waterrock soak`: a 36-second soak with every kind of fault, run as an operator would (a
subprocess), its JSON checked: each kind injected, the water stepping after each, no hang, no
crash, no particle lost, exit 0. No timing is asserted; the long soak is a benchmark, not this."""

from __future__ import annotations

import json

from tests.app.app_helpers import run_cli
from waterrock.app.cli import build_parser
from waterrock.bench.soak import SEASON, fault_kinds


def test_options_parse():
    a = build_parser().parse_args(["soak", "--hours", "1", "--faults", "--json", "s.json"])
    assert (a.command, a.hours, a.faults, str(a.json)) == ("soak", 1.0, "all", "s.json")
    assert build_parser().parse_args(["soak", "--hours", "1"]).faults is None
    assert fault_kinds("all") == tuple(k.name for k in SEASON)
    assert fault_kinds("camera_loss, torn_write") == ("camera_loss", "torn_write")


def test_unknown_fault_kind_is_one_line_and_status_2():
    r = run_cli("soak", "--hours", "0.01", "--faults", "camera_loss,meteor", timeout=120)
    assert r.returncode == 2
    assert "meteor" in r.stderr and "Traceback" not in r.stderr


def test_a_short_soak_injects_every_fault_and_loses_nothing(tmp_path):
    out = tmp_path / "soak.json"
    r = run_cli("soak", "--hours", "0.01", "--faults", "--json", str(out), timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    assert "24 accelerated hours" in r.stdout and "PASS" in r.stdout  # the goal is stated
    res = json.loads(out.read_text())
    assert set(res["faults"]) == {k.name for k in SEASON}
    for kind, f in res["faults"].items():
        assert f["injected"] >= 1, f"{kind}: none injected"
        assert f["survived"] == f["injected"], f"{kind}: the water stopped after one"
        assert f["recovered"] >= 1, f"{kind}: never recovered: {f['not_recovered']}"
    assert res["hangs"] == 0 and res["crashes"] == 0, res["crash_messages"]
    p = res["particles"]
    assert p["lost"] == 0 and p["emitted"] > 0 and p["retired"] > 0
    assert p["active_end"] == p["active_start"] + p["emitted"] - p["retired"] - p["nonfinite"]
    assert res["frames"] > 0 and res["sim_s"] > 0 and res["acceleration"] > 0
    assert res["tracker"]["skipped"] >= res["faults"]["garbage_frame"]["recovered"]  # bad frames skipped, counted
    assert res["osc"]["malformed"] >= 1 and res["sent"]["malformed_packets"] >= 1
    assert res["rss_mib"]["end"] > 0 and res["threads"]["end"] > 0 and res["ok"]
