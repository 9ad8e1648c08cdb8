"""`waterrock bench portals` at tiny settings: two processes on 127.0.0.1, a real Outgoing handing
synthetic water to a real Inflow and Solver stepping at 60 Hz, and bare ZeroMQ beside it. Every
figure is measured and real (positive latencies and costs), the books balance (what the sender
saw acknowledged is what the receiver took), and the table and JSON carry them. No timing is
asserted."""

from __future__ import annotations

import json

import pytest

from waterrock.app.cli import build_parser
from waterrock.bench import portals
from waterrock.bench.command import tables

SIZES = [10, 40]
MODES = ("work", "eager")


def test_options_parse():
    a = build_parser().parse_args(["bench", "portals", "--sizes", "10", "100", "--json", "p.json"])
    assert (a.which, a.sizes) == ("portals", ["10", "100"])


@pytest.fixture(scope="module")
def result():
    return portals.run_benchmark(SIZES, seconds=1.0, rate_seconds=1.0, raw_seconds=0.5, rate_start=50, rate_max=100,
                                 raw_max=200, modes=MODES, log=lambda m: None)


def test_every_latency_is_measured_and_the_books_balance(result):
    assert [row["particles"] for row in result["latency"]] == SIZES
    for row in result["latency"]:
        n = row["particles"]
        assert row["bytes"] > portals.BYTES_A_PARTICLE * n
        for mode in MODES:
            r = row[mode]
            lat, rx = r["latency"], r["receiver"]
            assert r["mode"] == mode and r["particles"] == n and r["frames"] > 0 and r["sent"] == n * r["frames"]
            assert lat["n"] > 0 and 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
            assert r["sent"] == r["acknowledged"] + r["drained"] and r["unanswered"] == 0
            assert r["acknowledged"] == rx["received"] and r["counts_match"]  # exactly what the solver took
            assert rx["refused"] == 0 and rx["bad"] == 0 and rx["clamped"] == 0  # in the domain, room for all
            assert rx["frames"] > 0 and rx["fps"] > 0 and rx["step"]["median_ms"] > 0 and rx["pump"]["median_ms"] > 0
            assert r["sender"]["median_ms"] > 0
            assert row[f"{mode}_over_raw_p50"] > 0
        raw = row["raw"]
        assert raw["latency"]["n"] > 0 and raw["latency"]["p50_ms"] > 0
        assert raw["acknowledged"] == raw["receiver"]["messages"] * n and raw["counts_match"]
    smallest = result["latency"][0]
    assert all(smallest[m]["drained"] == 0 for m in (*MODES, "raw"))  # 10 a frame: nothing drained


def test_the_rate_search_and_its_receiver(result):
    rx = result["receiver"]
    assert rx["latency"]["budget"] == rx["scene_budget"]  # the latency on the scene's own budget
    assert rx["rate"]["budget"] == rx["scene_budget"] + 3 * 100 and rx["rate"]["idle"]["received"] == 0
    for who in ("ours", "raw"):
        rate = result["rate"][who]
        assert rate["probes"] and rate["stopped"]
        for p in rate["probes"]:
            assert p["sent"] == p["acknowledged"] + p["drained"] and p["rate"] > 0
            assert p["failed"] is None or isinstance(p["failed"], str)
        if rate["largest"] is not None:
            best = rate["largest"]
            assert best["rate"] > 0 and best["particles"] in [p["particles"] for p in rate["probes"]]
    assert [p["particles"] for p in result["rate"]["ours"]["probes"]][0] == 50
    assert all(p["particles"] <= 200 for p in result["rate"]["raw"]["probes"])
    for p in result["rate"]["ours"]["probes"]:
        assert p["acknowledged"] == p["receiver"]["received"]


def test_the_table_and_the_json(result):
    text = portals.table(result)
    for piece in ("hand_over -> acknowledged", "largest sustained rate", "ours / raw", "work p50", "raw p50"):
        assert piece in text
    assert portals.table(result) in tables({"portals": result})
    back = json.loads(json.dumps(result))
    assert back["sender"]["scene"] == "upstream" and back["sender"]["window"] > 0
