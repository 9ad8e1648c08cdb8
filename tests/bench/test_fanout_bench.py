"""`waterrock bench fanout` at tiny settings: a real SnapshotPublisher in this process, one and two
render nodes (real FrameReceivers in child processes) and bare ZeroMQ beside them. Every figure
is measured and real (frames taken, positive latencies in order, a frame's bytes exactly what
its encoding says), the raw baseline is measured in the same run, and the table and JSON carry
them. No timing is asserted."""

from __future__ import annotations

import json

import pytest

from waterrock.app.cli import build_parser
from waterrock.bench import fanout
from waterrock.bench.command import tables
from waterrock.net.wire import MAX_HEADER
from waterrock.render.trails import chosen

N = 2000
NODES = (1, 2)
ENCODINGS = ("f32", "q16")
BYTES_A_PARTICLE = {"f32": 12 + 12 + 4 + 1, "q16": 6 + 6 + 4 + 1}  # positions, velocities, id, flags


def test_options_parse():
    a = build_parser().parse_args(["bench", "fanout", "--sizes", "100000", "--json", "f.json"])
    assert (a.which, a.sizes) == ("fanout", ["100000"])
    with pytest.raises(SystemExit):  # the script's own parser: only the encodings there are
        fanout.main(["--encodings", "f64"])


@pytest.fixture(scope="module")
def result():
    return fanout.run_benchmark([N], NODES, ENCODINGS, seconds=0.5, lines_only=True, log=lambda m: None)


def test_every_row_is_measured_against_raw(result):
    rows = result["rows"]
    plan = [(k, e, 1.0) for k in NODES for e in ENCODINGS] + [(max(NODES), "q16", fanout.LINES_SHARE)]
    assert [(r["nodes"], r["encoding"], r["share"]) for r in rows] == plan
    for row in rows:
        sent = row["sent_particles"]
        assert sent == (N if row["share"] == 1.0 else int(chosen(fanout.synthetic(N)[0].ids, row["share"]).sum()))
        assert 0 < sent <= N
        assert row["bytes"] == BYTES_A_PARTICLE[row["encoding"]] * sent + row["header_bytes"]
        assert 100 < row["header_bytes"] <= MAX_HEADER  # the JSON header, the q16 bounds in it
        assert row["bytes_per_particle"] == BYTES_A_PARTICLE[row["encoding"]]
        assert row["codec"]["encode"]["median_ms"] > 0 and row["codec"]["decode"]["median_ms"] > 0
        for who in ("ours", "raw"):
            r = row[who]
            assert r["published"] > 0 and r["publish"]["median_ms"] > 0 and r["published_fps"] > 0
            assert len(r["nodes"]) == row["nodes"]
            lat = r["latency"]
            assert lat["n"] > 0 and 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
            for node in r["nodes"]:
                assert node["mode"] == who and node["window"] == r["published"]
                assert 0 < node["delivered"] <= node["window"] and node["fps"] > 0
                assert node["missed"] == node["window"] - node["delivered"]
                assert node["latency"]["n"] == node["delivered"]
            assert r["fps_min"] > 0 and r["missed"] == sum(nd["missed"] for nd in r["nodes"])
        for node in row["ours"]["nodes"]:  # each render node decoded the whole frame
            assert node["particles"] == sent and node["decode"]["median_ms"] > 0
            assert node["receiver"]["bad"] == 0 and node["receiver"]["restarts"] == 0
        for node in row["raw"]["nodes"]:  # the same bytes on the wire
            assert node["bytes"] == row["raw"]["bytes"]
        assert row["raw"]["bytes"] == row["bytes"]  # the same lengths, part for part
        assert row["ours_over_raw_p50"] > 0 and row["ours_over_raw_p99"] > 0 and row["ours_over_raw_fps"] > 0


def test_goals_are_judged_only_on_their_rows(result):
    g = result["goals"]
    assert g["realtime"]["met_by"] is None and g["compact"]["met_by"] is None  # not the goal's sizes
    rows = [dict(r, particles=fanout.GOAL_PARTICLES, nodes=fanout.GOAL_NODES) for r in result["rows"]]
    judged = fanout.judge(rows)
    assert set(judged["realtime"]["by_encoding"]) == set(ENCODINGS)
    assert judged["compact"]["by_encoding"]["q16"]["met"]  # a 2000-particle frame is far below 2 MB


def test_the_table_and_the_json(result):
    text = fanout.table(result)
    for piece in ("publish (before encoding) to the decoded snapshot", "raw p99", "/raw p50", "codec in one process",
                  "lines only", "not judged"):
        assert piece in text
    assert len([ln for ln in text.splitlines() if f"{N:,}" in ln]) == len(result["rows"]) + 3  # rows + codec rows
    assert fanout.table(result) in tables({"fanout": result})
    back = json.loads(json.dumps(result))
    assert back["rows"][0]["ours"]["latency"]["p50_ms"] == result["rows"][0]["ours"]["latency"]["p50_ms"]
    assert back["machine"]["cores"] >= 1 and back["latency_to"]
