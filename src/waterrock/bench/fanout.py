"""``waterrock bench fanout``: a simulation node's frames fanned out to 1, 2 and 4 render nodes on
127.0.0.1, against bare ZeroMQ carrying the same bytes to the same processes.

    waterrock bench fanout [--sizes 100000 1000000] [--json out.json]
    python benchmarks/bench_fanout.py [--nodes 1 2 4] [--sizes ...] [--encodings f32 f16 q16] [--seconds 2]

The simulation node, in this process, is a real :class:`~waterrock.net.nodes.SnapshotPublisher`
driven at 60 frames a second (each frame published, then a sleep to the next 1/60 s slot; a
frame whose publishing overran its slot is counted ``late`` and the schedule restarts from it).
It is fed synthetic particles (a few-metre box drifting a little each frame, velocities, ids
0..n-1, a few recycled), a handful of snapshots prebuilt per size and cycled, so what is
measured is the publisher and not the making of the data.

The render nodes are child processes (multiprocessing, spawn), started once and reused: each
runs a real :class:`~waterrock.net.nodes.FrameReceiver`, ``take()``s what arrived and hands each
frame to ``snapshot_of``, the snapshot a render node gives its renderer. Latency is measured from
publishing (the frame's ``sent`` stamp, taken before encoding) to that decoded snapshot, not to
the picture drawn: the children open no OpenGL, because four llvmpipe renderers drawing 100k
particles on this machine's two cores would measure the software rasterizer, not the fan-out
(the renderer has its own benchmark, ``waterrock bench render``).

Each cell (nodes x particles x encoding, and one lines-only row: the 10 % of particles that draw
lines, at the largest size, q16, the most nodes) runs ``seconds``; before it, frames are published
until every node has taken one (ZeroMQ's slow joiner), then a quarter second more. A node's figures
count only the timed frames: delivered (and frames a second over the publishing time), missed,
latency p50/p99/max, and its take()+snapshot_of time a frame (the decode).

The baseline, in the same run, right after each cell: a bare PUB socket sending prebuilt frames of
exactly the lengths of that cell's parts (header, positions, velocities, ids, flags; the publish
time and frame number in the header's first 16 bytes), at the same pace, to the same children,
which only receive and count (no parse, no decode). The ratios ours/raw show what the encoding,
the parsing and the decode cost on top of moving the bytes.

Apart, with no network: each encoding's encode (``frame_of`` + ``Frame.frames``) and decode
(``Frame.parse`` + ``snapshot_of``) a frame, in this process, so a publish's cost splits into
encode and send.

Goals (issue 24), judged and printed, never asserted by the tests: 100k particles at 60 frames a
second to 4 render nodes with p99 latency at most one frame (16.7 ms), and a compact encoding's
frame at 100k at most 2 MB (1 GbE at 60 frames a second).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq

from waterrock.bench.stats import report
from waterrock.net.nodes import HWM_FRAMES, FrameReceiver, NodeError, SnapshotPublisher, frame_of, snapshot_of
from waterrock.net.wire import ENCODINGS, Frame
from waterrock.snapshots import ParticleSnapshot

FPS = 60.0
NODES = (1, 2, 4)
SIZES = (100_000, 1_000_000)
SECONDS = 2.0  # each cell, ours and raw alike
LINES_SHARE = 0.1  # the lines-only row: the share of particles that draw lines (the default)
PREBUILT = 4  # snapshots a size, cycled
WARM_S = 0.25  # published after every node has joined, before the timed frames
JOIN_S = 15.0  # the longest wait for every node to take its first frame
DRAIN_S = 0.5  # after the last timed frame: how long a node goes on taking
FRAME_MS = 1e3 / FPS
GOAL_NODES, GOAL_PARTICLES = 4, 100_000
GOAL_FPS_SHARE = 0.97  # "60 frames a second": the slowest node takes at least 97 % of 60 a second
COMPACT_MAX_BYTES = 2_000_000  # 1 GbE at 60 frames a second
COMPACT = ("f16", "q16")
STAMP = struct.Struct("<dq")  # raw frames: time.time() at sending, the frame number


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lat(samples_ms) -> dict:
    if len(samples_ms) == 0:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(samples_ms, np.float64)
    return {"n": int(ms.size), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def _cost(samples_s) -> dict:
    if len(samples_s) == 0:
        return {"n": 0, "median_ms": None, "p99_ms": None, "mean_ms": None}
    ms = 1e3 * np.asarray(samples_s, np.float64)
    return {"n": int(ms.size), "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def _length(part) -> int:
    return len(part) if isinstance(part, bytes | bytearray) else part.nbytes


# --- the synthetic water ------------------------------------------------------------------------


def synthetic(n: int, count: int = PREBUILT, seed: int = 0) -> list[ParticleSnapshot]:
    """``count`` snapshots of ``n`` particles in a 4 x 3 x 4 m box, each a frame later than the
    one before (the particles moved by their velocity), with ids 0..n-1 and 0.2 % recycled."""
    rng = np.random.default_rng(seed)
    pos = np.column_stack([rng.uniform(-2, 2, n), rng.uniform(0, 3, n), rng.uniform(-2, 2, n)]).astype(np.float32)
    vel = rng.normal(0.0, 0.5, (n, 3)).astype(np.float32)
    ids = np.arange(n, dtype=np.int32)
    out = []
    for k in range(count):
        out.append(ParticleSnapshot(frame=k, time=k / FPS, positions=pos + np.float32(k / FPS) * vel,
                                    velocities=vel, ids=ids, recycled=rng.random(n) < 0.002))
    return out


# --- a render node: a child process -------------------------------------------------------------


def _serve(conn, ctx: zmq.Context, mode: str, spec: str) -> dict:
    """Take frames from ``spec`` until told to stop; ``mode`` "ours" (a FrameReceiver, each frame
    decoded with snapshot_of) or "raw" (a bare SUB socket that only counts). The figures of the
    frames numbered from ("start", first) to ("stop", end, drain_s), taken until the last of them
    or ``drain_s`` after the stop."""
    if mode == "ours":
        rx = FrameReceiver(spec, context=ctx)
        sock = rx.sock
    else:
        rx = None
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, HWM_FRAMES * 5)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(spec)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(conn.fileno(), zmq.POLLIN)
    joined = False
    first = end = None
    deadline = None
    latency, decode, numbers = [], [], []
    taken = 0
    particles = nbytes = None
    base = {}
    last = -1
    while True:
        events = dict(poller.poll(20))
        while conn.poll():
            cmd = conn.recv()
            if cmd[0] == "start":
                first = cmd[1]
                if rx is not None:
                    base = {k: getattr(rx, k) for k in ("missed", "stale", "bad", "restarts")}
            else:  # ("stop", end, drain_s): frames first..end-1 were published
                end, deadline = cmd[1], time.monotonic() + cmd[2]
        if deadline is not None and (last >= end - 1 or time.monotonic() > deadline):
            break
        if sock not in events:
            continue
        got = []  # (frame number, sent, decode seconds a frame)
        t0 = time.perf_counter()
        if rx is not None:
            out = rx.take()
            snaps = [(f.frame, f.sent, snapshot_of(f)) for f, _ in out]
            now = time.time()
            spent = (time.perf_counter() - t0) / max(1, len(snaps))
            for number, sent, snap in snaps:
                got.append((number, sent, spent))
                particles = len(snap)
        else:
            while True:
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                sent, number = STAMP.unpack_from(parts[0].bytes)
                nbytes = sum(len(p) for p in parts)
                got.append((number, sent, 0.0))
            now = time.time()
        for number, sent, spent in got:
            taken += 1
            last = max(last, number)
            if first is not None and number >= first and (end is None or number < end):
                latency.append(1e3 * (now - sent))
                decode.append(spent)
                numbers.append(number)
        if got and not joined:
            joined = True
            conn.send(("joined",))
    window = 0 if first is None else end - first
    report = {"mode": mode, "delivered": len(numbers), "window": window, "missed": window - len(set(numbers)),
              "taken": taken, "latency_ms": latency, "latency": _lat(latency)}
    if rx is not None:
        report.update({"decode": _cost(decode), "particles": particles,
                       "receiver": {k: getattr(rx, k) - base.get(k, 0) for k in ("missed", "stale", "bad",
                                                                                  "restarts")}})
        rx.close()
    else:
        report["bytes"] = nbytes
        sock.close(0)
    return report


def _node(conn) -> None:
    """The child: serves what the parent asks, ("ours"|"raw", endpoint), one cell at a time,
    until ("quit",)."""
    ctx = zmq.Context.instance()
    conn.send(("ready", os.getpid()))
    while True:
        cmd = conn.recv()
        if cmd[0] == "quit":
            conn.send(("bye",))
            return
        conn.send(("report", _serve(conn, ctx, cmd[0], cmd[1])))


class Node:
    """A render-node child, from the parent's side."""

    def __init__(self):
        mp = multiprocessing.get_context("spawn")
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(target=_node, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.pid = None

    def ready(self, timeout: float = 120.0) -> None:
        _, self.pid = self.recv(timeout)

    def recv(self, timeout: float = 30.0):
        if not self.conn.poll(timeout):
            raise RuntimeError(f"a render node did not answer in {timeout:g} s (alive: {self.proc.is_alive()})")
        return self.conn.recv()

    def tell(self, *cmd) -> None:
        self.conn.send(cmd)

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self.tell("quit")
                self.recv(10.0)
        except (RuntimeError, OSError, EOFError):
            pass
        self.proc.join(5.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5.0)
        self.conn.close()


# --- the simulation node's two publishers: ours and bare ZeroMQ ---------------------------------


class Link:
    """A PUB socket that is closed only once every subscriber it accepted has left.

    libzmq 4.3 aborts the process (``errno_assert`` in ``session_base_t::clean_pipes``, "Resource
    temporarily unavailable (src/session_base.cpp:233)"; libzmq issue 3442) when a PUB socket is
    closed while a connection's session is half-way through a multipart message and the peer
    goes: a 29 MB frame queued for a render node that has just left is such a message. It ended
    one run of this benchmark; the nodes close their sockets first, and ``close`` waits for the
    disconnections before closing."""

    def watch(self, sock: zmq.Socket) -> None:
        self.sock, self.closed = sock, False
        self.monitor = sock.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)

    def close(self, timeout: float = 10.0) -> None:
        from zmq.utils.monitor import recv_monitor_message

        if self.closed:
            return
        self.closed = True
        accepted = left = 0
        deadline = time.monotonic() + timeout
        while True:
            while self.monitor.poll(0):
                event = recv_monitor_message(self.monitor)["event"]
                accepted += event == zmq.EVENT_ACCEPTED
                left += event == zmq.EVENT_DISCONNECTED
            if left >= accepted or time.monotonic() > deadline:
                break
            self.monitor.poll(50)
        self.sock.disable_monitor()
        self.monitor.close(0)
        self.sock.close(0)


class Ours(Link):
    """A real SnapshotPublisher, fed the prebuilt snapshots in turn, numbered as it goes."""

    def __init__(self, snapshots: list[ParticleSnapshot], encoding: str, share: float | None):
        for _ in range(10):
            try:
                self.pub = SnapshotPublisher(str(_free_port()), encoding, share)
                break
            except NodeError:  # the free port was taken meanwhile
                continue
        else:
            raise NodeError("no free port for the publisher")
        self.endpoint, self.snapshots = self.pub.endpoint, snapshots
        self.watch(self.pub.sock)

    def send(self, number: int) -> None:
        snap = self.snapshots[number % len(self.snapshots)]
        self.pub.publish(dataclasses.replace(snap, frame=number, time=number / FPS))


class Raw(Link):
    """A bare PUB socket sending prebuilt parts of the given lengths, the first stamped with the
    time and the frame number; the publisher's high-water mark."""

    def __init__(self, ctx: zmq.Context, lengths: list[int]):
        sock = ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, HWM_FRAMES * 5)
        sock.bind("tcp://127.0.0.1:*")
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.head = bytearray(max(lengths[0], STAMP.size))
        self.body = [bytes(k) for k in lengths[1:]]
        self.watch(sock)

    def send(self, number: int) -> None:
        STAMP.pack_into(self.head, 0, time.time(), number)
        self.sock.send_multipart([bytes(self.head), *self.body], copy=False)


def drive(link, nodes: list[Node], mode: str, seconds: float, fps: float = FPS) -> dict:
    """Publish through ``link`` at ``fps`` until every node has joined, WARM_S more, then
    ``seconds`` of timed frames (by the clock: a publisher slower than ``fps`` sends fewer); the
    publisher's figures and every node's report."""
    period = 1.0 / fps
    for node in nodes:
        node.tell(mode, link.endpoint)
    number, joined = 0, set()
    start = due = time.monotonic()
    first = t_joined = t_first = None
    cost, late = [], 0
    while t_first is None or time.monotonic() - t_first < seconds:
        if t_joined is None:
            for i, node in enumerate(nodes):
                if i not in joined and node.conn.poll():
                    msg = node.conn.recv()
                    if msg[0] != "joined":
                        raise RuntimeError(f"a render node said {msg!r} before it joined")
                    joined.add(i)
            if len(joined) == len(nodes):
                t_joined = time.monotonic()
            elif time.monotonic() - start > JOIN_S:
                raise RuntimeError(f"{len(nodes) - len(joined)} render node(s) took no frame in {JOIN_S:g} s")
        elif first is None and time.monotonic() - t_joined >= WARM_S:
            first, t_first = number, time.monotonic()
            for node in nodes:
                node.tell("start", first)
        t0 = time.perf_counter()
        link.send(number)
        spent = time.perf_counter() - t0
        number += 1
        due += period
        now = time.monotonic()
        if first is not None:
            cost.append(spent)
            if now > due:
                late += 1
        if now > due:
            due = now
        else:
            time.sleep(due - now)
    published_s = time.monotonic() - t_first
    published = number - first
    for node in nodes:
        node.tell("stop", number, DRAIN_S)
    reports = []
    for node in nodes:
        msg = node.recv(DRAIN_S + 60.0)
        if msg[0] != "report":
            raise RuntimeError(f"a render node said {msg!r} instead of its report")
        reports.append(msg[1])
    link.close()  # after every node has left: see Link.close
    samples = [ms for r in reports for ms in r.pop("latency_ms")]
    for r in reports:
        r["fps"] = r["delivered"] / published_s
    fps_all = [r["fps"] for r in reports]
    return {"published": published, "seconds": published_s, "published_fps": published / published_s,
            "late_frames": late, "publish": _cost(cost), "nodes": reports, "latency": _lat(samples),
            "fps_min": min(fps_all), "fps_mean": float(np.mean(fps_all)),
            "missed": sum(r["missed"] for r in reports)}


# --- the benchmark ------------------------------------------------------------------------------


def codec(snapshots: list[ParticleSnapshot], encoding: str, share: float | None, repeat: int = 3) -> dict:
    """Encode (frame_of + Frame.frames) and decode (Frame.parse + snapshot_of) a frame, in this
    process, no socket: medians of ``repeat``; and the frame's part lengths."""
    enc, dec = [], []
    parts = None
    for k in range(repeat):
        snap = snapshots[k % len(snapshots)]
        t0 = time.perf_counter()
        parts = frame_of(snap, "0" * 32, 0, 1.0 if share is None else share).frames(encoding)
        enc.append(time.perf_counter() - t0)
        raw = [p if isinstance(p, bytes) else p.tobytes() for p in parts]
        t0 = time.perf_counter()
        snapshot_of(Frame.parse(raw))
        dec.append(time.perf_counter() - t0)
    return {"encode": _cost(enc), "decode": _cost(dec), "lengths": [_length(p) for p in parts]}


def cell(nodes: list[Node], snapshots: list[ParticleSnapshot], encoding: str, share: float | None,
         seconds: float, ctx: zmq.Context) -> dict:
    """One row: ours, then raw with the same part lengths, to the same nodes."""
    n = len(snapshots[0])
    shown = n if share is None else int(frame_of(snapshots[0], "0" * 32, 0, share).ids.size)
    c = codec(snapshots, encoding, share)
    row = {"nodes": len(nodes), "particles": n, "encoding": encoding, "share": 1.0 if share is None else share,
           "sent_particles": shown, "codec": c}
    link = Ours(snapshots, encoding, share)
    try:
        row["ours"] = drive(link, nodes, "ours", seconds)
        row["bytes"] = link.pub.bytes
    finally:
        link.close()
    arrays = c["lengths"][1:]
    row["header_bytes"] = row["bytes"] - sum(arrays)  # the last frame's: its length varies with its numbers
    row["bytes_per_particle"] = sum(arrays) / max(1, shown)
    raw = Raw(ctx, [row["header_bytes"], *arrays])
    try:
        row["raw"] = drive(raw, nodes, "raw", seconds)
        row["raw"]["bytes"] = sum(len(b) for b in (raw.head, *raw.body))
    finally:
        raw.close()
    o, r = row["ours"], row["raw"]
    for q in ("p50_ms", "p99_ms"):
        row[f"ours_over_raw_{q[:3]}"] = (o["latency"][q] / r["latency"][q] if o["latency"]["n"] and r["latency"]["n"]
                                         and r["latency"][q] > 0 else None)
    row["ours_over_raw_fps"] = o["fps_mean"] / r["fps_mean"] if r["fps_mean"] > 0 else None
    return row


def judge(rows: list[dict], fps: float = FPS) -> dict:
    """The issue's goals, from the rows measured (None where the run had no row for one)."""
    at_goal = [r for r in rows if r["nodes"] == GOAL_NODES and r["particles"] == GOAL_PARTICLES and r["share"] == 1.0]
    floor = GOAL_FPS_SHARE * fps
    realtime = {r["encoding"]: {"fps_min": r["ours"]["fps_min"], "p99_ms": r["ours"]["latency"]["p99_ms"],
                                "met": bool(r["ours"]["fps_min"] >= floor and r["ours"]["latency"]["p99_ms"] is not None
                                            and r["ours"]["latency"]["p99_ms"] <= 1e3 / fps)} for r in at_goal}
    compact = {}
    for r in rows:
        if r["encoding"] in COMPACT and r["particles"] == GOAL_PARTICLES and r["share"] == 1.0:
            compact[r["encoding"]] = {"bytes": r["bytes"], "met": r["bytes"] <= COMPACT_MAX_BYTES}
    return {
        "realtime": {"nodes": GOAL_NODES, "particles": GOAL_PARTICLES, "fps_floor": floor, "p99_max_ms": 1e3 / fps,
                     "by_encoding": realtime, "met_by": [e for e, v in realtime.items() if v["met"]] if realtime
                     else None},
        "compact": {"particles": GOAL_PARTICLES, "max_bytes": COMPACT_MAX_BYTES, "by_encoding": compact,
                    "met_by": [e for e, v in compact.items() if v["met"]] if compact else None},
    }


def run_benchmark(sizes=SIZES, nodes=NODES, encodings=ENCODINGS, seconds: float = SECONDS, lines_only: bool = True,
                  log: Callable[[str], None] = print) -> dict:
    """Every measurement, as a dict (what ``waterrock bench fanout`` prints and saves)."""
    from waterrock.bench.machine import machine_info

    t_start = time.monotonic()
    sizes, nodes = [int(n) for n in sizes], sorted({int(k) for k in nodes})
    encodings = list(encodings)
    for e in encodings:
        if e not in ENCODINGS:
            raise ValueError(f"unknown encoding {e!r}: one of {', '.join(ENCODINGS)}")
    if not sizes or not nodes or not encodings or min(nodes) < 1 or min(sizes) < 1:
        raise ValueError("fanout: at least one size, one node count (>= 1) and one encoding")
    log(f"fanout: starting {max(nodes)} render node(s)")
    children = [Node() for _ in range(max(nodes))]
    ctx = zmq.Context.instance()
    rows = []
    try:
        for child in children:
            child.ready()
        prebuilt = {}
        for n in sizes:
            log(f"fanout: {PREBUILT} synthetic snapshots of {n:,} particles")
            prebuilt[n] = synthetic(n, seed=n)
        plan = [(k, n, e, None) for k in nodes for n in sizes for e in encodings]
        if lines_only:
            plan.append((max(nodes), max(sizes), "q16" if "q16" in encodings else encodings[-1], LINES_SHARE))
        for k, n, e, share in plan:
            log(f"fanout: {k} node(s), {n:,} particles, {e}" + (f", lines only ({share:g})" if share else ""))
            row = cell(children[:k], prebuilt[n], e, share, seconds, ctx)
            o, r = row["ours"], row["raw"]
            log(f"fanout:   {row['bytes'] / 1e6:.2f} MB, {o['fps_min']:.1f} frames a second (slowest node), p99 "
                f"{_f(o['latency']['p99_ms'])} ms; raw {r['fps_min']:.1f}, p99 {_f(r['latency']['p99_ms'])} ms")
            rows.append(row)
    finally:
        for child in children:
            child.close()
    m = machine_info(None, with_gl=False)
    return {"fps": FPS, "seconds": seconds, "nodes": nodes, "sizes": sizes, "encodings": encodings,
            "lines_share": LINES_SHARE if lines_only else None, "hwm_frames": HWM_FRAMES, "drain_s": DRAIN_S,
            "latency_to": "the decoded snapshot handed to the renderer (no OpenGL in the render nodes)",
            "machine": {k: m[k] for k in ("cpu", "machine", "system", "cores", "usable_cores", "versions")},
            "rows": rows, "goals": judge(rows), "elapsed_s": time.monotonic() - t_start}


# --- the report ---------------------------------------------------------------------------------


def _f(v, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(result: dict) -> str:
    m = result.get("machine") or {}
    lines = [
        f"snapshot fan-out on 127.0.0.1 at {result['fps']:g} frames a second ({m.get('cpu', '?')}, "
        f"{m.get('usable_cores', '?')} cores): a real SnapshotPublisher in this process, {result['seconds']:g} s a "
        "cell, to render nodes in child processes, each a real FrameReceiver + snapshot_of; raw = a bare PUB/SUB, "
        "the same part lengths, nodes that only count",
        "latency from publish (before encoding) to the decoded snapshot handed to the renderer, not to the picture "
        "drawn: no OpenGL in the nodes, as llvmpipe drawing 4 x 100k on these cores would measure the rasterizer, "
        "not the fan-out",
        f"{'nodes':>5}{'particles':>10}{'enc':>5}{'MB':>7}{'B/p':>6}{'pub ms':>8}{'late':>5}{'pub fps':>8}{'fps':>6}"
        f"{'missed':>7}{'p50':>8}{'p99':>8}{'max':>8}{'dec ms':>8}{'raw fps':>8}{'raw p50':>8}{'raw p99':>8}"
        f"{'/raw p50':>9}{'/raw p99':>9}",
    ]
    for row in result["rows"]:
        o, r = row["ours"], row["raw"]
        enc = row["encoding"] + ("*" if row["share"] < 1.0 else "")
        dec = [nd["decode"]["median_ms"] for nd in o["nodes"] if nd["decode"]["median_ms"] is not None]
        lines.append(
            f"{row['nodes']:>5}{row['particles']:>10,}{enc:>5}{row['bytes'] / 1e6:>7.2f}"
            f"{row['bytes_per_particle']:>6.1f}"
            f"{_f(o['publish']['median_ms']):>8}{o['late_frames']:>5}{o['published_fps']:>8.1f}{o['fps_min']:>6.1f}"
            f"{o['missed']:>7}{_f(o['latency']['p50_ms']):>8}{_f(o['latency']['p99_ms']):>8}"
            f"{_f(o['latency']['max_ms'], '.1f'):>8}"
            f"{_f(float(np.median(dec)) if dec else None):>8}{r['fps_min']:>8.1f}{_f(r['latency']['p50_ms']):>8}"
            f"{_f(r['latency']['p99_ms']):>8}{_f(row['ours_over_raw_p50'], '.1f'):>9}"
            f"{_f(row['ours_over_raw_p99'], '.1f'):>9}")
    lines.append("  MB, B/p: a frame's bytes (header included) and its array bytes a particle sent; pub ms: publish() "
                 "(encode + send) median; late: timed frames whose publishing overran its 1/60 s slot; pub fps: "
                 "frames published a second; fps: frames a second taken by the slowest node; missed: frames not "
                 "taken, all nodes; p50/p99/max ms: publish to decoded, all nodes; dec ms: a node's take() + "
                 "snapshot_of a frame, median")
    if result.get("lines_share") is not None:
        lines.append(f"  *: lines only, the {result['lines_share']:.0%} of particles that draw lines")
    lines.append("codec in one process, no socket (medians; the first rows' size per encoding):")
    lines.append(f"{'particles':>10}{'enc':>5}{'MB':>7}{'B/p':>6}{'encode ms':>11}{'decode ms':>11}")
    seen = set()
    for row in result["rows"]:
        key = (row["particles"], row["encoding"], row["share"])
        if key in seen:
            continue
        seen.add(key)
        enc = row["encoding"] + ("*" if row["share"] < 1.0 else "")
        c = row["codec"]
        lines.append(f"{row['particles']:>10,}{enc:>5}{row['bytes'] / 1e6:>7.2f}{row['bytes_per_particle']:>6.1f}"
                     f"{_f(c['encode']['median_ms']):>11}{_f(c['decode']['median_ms']):>11}")
    g = result["goals"]
    rt, cp = g["realtime"], g["compact"]
    if rt["met_by"] is None:
        lines.append(f"goal: {rt['particles']:,} at {result['fps']:g} fps to {rt['nodes']} nodes, p99 <= "
                     f"{rt['p99_max_ms']:.1f} ms: not judged (no such row)")
    else:
        detail = ", ".join(f"{e} {v['fps_min']:.1f} fps p99 {_f(v['p99_ms'])} ms" for e, v in rt["by_encoding"].items())
        lines.append(f"goal: {rt['particles']:,} at {result['fps']:g} fps (slowest node >= {rt['fps_floor']:.1f}) to "
                     f"{rt['nodes']} nodes, p99 <= {rt['p99_max_ms']:.1f} ms: "
                     f"{'met by ' + ', '.join(rt['met_by']) if rt['met_by'] else 'NOT met'} ({detail})")
    if cp["met_by"] is None:
        lines.append(f"goal: a compact frame of {cp['particles']:,} <= {cp['max_bytes'] / 1e6:g} MB: not judged")
    else:
        detail = ", ".join(f"{e} {v['bytes'] / 1e6:.2f} MB" for e, v in cp["by_encoding"].items())
        lines.append(f"goal: a compact frame of {cp['particles']:,} <= {cp['max_bytes'] / 1e6:g} MB (1 GbE at "
                     f"{result['fps']:g} fps): {'met by ' + ', '.join(cp['met_by']) if cp['met_by'] else 'NOT met'} "
                     f"({detail})")
    lines.append(f"  (run {result['elapsed_s']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=list(NODES), help="render nodes (1 2 4)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="particles a frame (100000 1000000)")
    ap.add_argument("--encodings", nargs="+", choices=ENCODINGS, default=list(ENCODINGS), help="(f32 f16 q16)")
    ap.add_argument("--seconds", type=float, default=SECONDS, help="seconds a cell, ours and raw each (2)")
    ap.add_argument("--no-lines-only", action="store_true", help="skip the lines-only row")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    result = run_benchmark(args.sizes, args.nodes, args.encodings, args.seconds, lines_only=not args.no_lines_only)
    return report(result, table, args.json)


if __name__ == "__main__":
    main()
