"""``waterrock bench portals``: what handing water to another work over a portal costs, against
bare ZeroMQ carrying the same bytes between the same two processes.

    waterrock bench portals [--sizes 10 100 1000] [--json out.json]
    python benchmarks/bench_portals.py [--sizes ...] [--seconds 4] [--rate-seconds 2] [--rate-max 51200]

Two processes on 127.0.0.1. The receiver, in a child process (multiprocessing, spawn), is a work:
a real :class:`~waterrock.net.portal.Inflow` feeding a real ``Solver`` (the default scene, Taichi
on the CPU) that steps at 60 Hz and pumps the inflow once a frame after its step, as
``PortalLinks.exchange`` does, so the solver's ``inject`` is in the path. The arrivals are placed
in the scene's floor sink, which retires them in the next substep, and for the rate search the
budget (``fluid.max_particles``) is raised to hold three frames' arrivals in one pump: the budget
is not the limit while the receiver keeps up (its ``refused`` is reported; where it falls so far
behind that one pump brings in more, the probe stops on the refusals and says so). The latency is
measured on the scene's own budget, as a budget costs the step time (the grid's passes run over
all of it).
The sender, in this process, is a real :class:`~waterrock.net.portal.Outgoing` with the upstream
scene's portal settings (``to_rock``: its transform and window), but no solver: it is fed
synthetic particles, placed (through the inverse of the portal's transform) in the receiver's
floor sink, and driven at 60 frames a second. Between frames it waits on its socket and pumps
as soon as an acknowledgement arrives, so a latency is not rounded up to the sender's next frame
(a work sees the acknowledgement up to one frame later).

1. Hand-over latency at each size (particles a frame): the time from ``hand_over`` to the
   acknowledgement being taken by ``pump`` (the sequence number leaving ``in_flight``), p50 and
   p99, with the receiver as a work (``work``: pumps once a frame) and, apart, pumping also as
   soon as a batch arrives between its frames (``eager``: the protocol's and inject's cost
   without the wait for the receiver's next frame).
2. The largest sustained rate: particles a frame doubled from ``rate_start`` until the portal
   drains (its window full), the acknowledgements fall behind (half the window in flight at the
   end), the sender misses a tenth of its frames or the receiver refuses; the largest rate
   (particles a second, as sent) with nothing drained.
3. The baseline, in the same run between the same processes: a DEALER sending, at the same
   sizes, four prebuilt frames of the same lengths as our batch's to a ROUTER that does nothing
   but count and answer each with its 8-byte sequence number. Its round trip, and its largest
   rate by the same rules (the same window), searched from the size where ours stopped. The
   ratios ours/raw show what the protocol (encoding, parsing, dedup, the transform, the
   acknowledgements) and the solver's inject cost.
4. The host's cost a frame: the sender's ``hand_over`` + ``pump`` (all the frame's pumps), and
   the receiver's ``pump`` (parse, inject, acknowledge) in the frames a batch arrived.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import socket
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq

from waterrock.bench.stats import report
from waterrock.net.portal import RESEND_S, Outgoing
from waterrock.net.wire import MAX_BATCH, Batch

FPS = 60.0
SIZES = (10, 100, 1000)  # particles a frame for the latency
SECONDS = 4.0  # each latency point
RATE_START = 100
RATE_MAX = 51_200  # particles a frame: the search's last size (the rate receiver's budget holds three)
RATE_SECONDS = 2.0  # each rate probe
RAW_SECONDS = 2.0  # each raw latency point (it has no frame to wait for)
FLUSH_S = 5.0  # after a point: the longest wait for its hand-overs in flight
SINK_Y = (0.014, 0.028)  # the default scene's floor sink is y < 0.03; the inflow clamps to y >= 0.012
BYTES_A_PARTICLE = 8 + 12 + 12  # id, position, velocity


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lat(samples_s: list[float]) -> dict:
    if not samples_s:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ms = 1e3 * np.asarray(samples_s)
    return {"n": int(ms.size), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def _cost(samples_s: list[float]) -> dict:
    if not samples_s:
        return {"n": 0, "median_ms": None, "p99_ms": None, "mean_ms": None}
    ms = 1e3 * np.asarray(samples_s)
    return {"n": int(ms.size), "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


# --- the receiver: a child process --------------------------------------------------------------


def receiver_scene(budget: int, port: int):
    """The default scene with its particle budget raised to ``budget`` and its inflow on ``port``."""
    from waterrock.scene import load_scene

    scene = load_scene("default")
    portals = [p.model_copy(update={"port": port}) if p.direction == "in" else p for p in scene.portals]
    return scene.model_copy(update={"fluid": scene.fluid.model_copy(update={"max_particles": budget}),
                                    "portals": portals})


class _Books:
    """What the receiver measured since the last mark."""

    def __init__(self, inflow=None):
        self.step, self.pump, self.frames, self.late, self.pumps, self.most = [], [], 0, 0, 0, 0
        self.start = time.monotonic()
        self.base = dict(inflow.counters()) if inflow is not None else {}

    def report(self, inflow, solver) -> dict:
        c = inflow.counters()
        seconds = time.monotonic() - self.start
        return {"seconds": seconds, "frames": self.frames, "fps": self.frames / max(seconds, 1e-9),
                "late_frames": self.late, "step": _cost(self.step), "pump": _cost(self.pump), "pumps": self.pumps,
                "most_batches": self.most,
                **{k: c[k] - self.base.get(k, 0) for k in ("received", "refused", "batches", "duplicates", "bad",
                                                             "clamped")},
                "active": int(solver.stats.get("active", 0)), "retired_last_frame": int(solver.stats.get("retired", 0))}


def _raw_loop(conn, ctx) -> None:
    """A ROUTER that counts what arrives and answers each message with its first 8 bytes, until
    the parent says ``stop``."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")
    conn.send(("raw", sock.getsockopt_string(zmq.LAST_ENDPOINT)))
    messages = nbytes = 0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while True:
        if conn.poll():
            cmd = conn.recv()
            if cmd[0] == "mark":
                conn.send({"messages": messages, "bytes": nbytes})
                messages = nbytes = 0
                continue
            break  # stop
        if not poller.poll(20):
            continue
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            messages += 1
            nbytes += sum(len(f) for f in frames[1:])
            sock.send_multipart([frames[0], frames[1].bytes[:8]], zmq.NOBLOCK)
    sock.close(0)
    conn.send({"messages": messages, "bytes": nbytes})


def _receiver(conn, budget: int, arch: str) -> None:
    """The child: a work stepping the default scene at 60 Hz with a real inflow, told what to do
    over ``conn``: ("mode", "work"|"eager"), ("mark",) for the books since the last mark,
    ("budget", n) for a new solver with that budget (the same inflow), ("raw",) to switch to the
    bare ROUTER (then ("stop",) to come back), ("quit",)."""
    import logging

    from waterrock.net.portal import Inflow, PortalError
    from waterrock.solver.solver import Solver

    logging.basicConfig(level=logging.WARNING)
    ctx = zmq.Context.instance()
    for _ in range(10):
        scene = receiver_scene(budget, _free_port())
        try:
            inflow = Inflow(ctx, next(p for p in scene.portals if p.direction == "in"), uuid.uuid4().hex,
                            scene.domain, scene.fluid.spacing)
            break
        except PortalError:
            continue
    else:
        raise PortalError("no free port for the inflow")

    def build(budget: int):
        t = time.perf_counter()
        solver = Solver(receiver_scene(budget, inflow.portal.port), arch=arch)
        for _ in range(30):  # compiled, and the emitters running
            solver.step()
        inflow.pump(solver)
        return solver, {"budget": budget, "arch": str(solver.arch), "build_s": time.perf_counter() - t}

    solver, info = build(budget)
    conn.send(("ready", inflow.endpoint, {**info, "inflow": inflow.name, "sink_y": list(SINK_Y)}))
    mode, books = "work", _Books(inflow)
    period = 1.0 / FPS
    due = time.monotonic()
    while True:
        while conn.poll():
            cmd = conn.recv()
            if cmd[0] == "mode":
                mode = cmd[1]
            elif cmd[0] == "mark":
                conn.send(books.report(inflow, solver))
                books = _Books(inflow)
            elif cmd[0] == "budget":  # the same inflow, a solver with another budget
                del solver
                solver, info = build(cmd[1])
                conn.send(info)
                books, due = _Books(inflow), time.monotonic()
            elif cmd[0] == "raw":
                _raw_loop(conn, ctx)
                books, due = _Books(inflow), time.monotonic()
            else:  # quit
                inflow.close()
                conn.send(("bye",))
                return
        t0 = time.perf_counter()
        solver.step()
        t1 = time.perf_counter()
        before = inflow.batches
        inflow.pump(solver)
        t2 = time.perf_counter()
        books.step.append(t1 - t0)
        if inflow.batches > before:
            books.pump.append(t2 - t1)
            books.pumps += 1
            books.most = max(books.most, inflow.batches - before)
        books.frames += 1
        due += period
        if due < time.monotonic():
            books.late += 1
            due = time.monotonic()
        while (left := due - time.monotonic()) > 0:
            if mode != "eager":
                time.sleep(left)
                break
            if inflow.sock.poll(1e3 * left, zmq.POLLIN):
                t1 = time.perf_counter()
                before = inflow.batches
                inflow.pump(solver)
                if inflow.batches > before:
                    books.pump.append(time.perf_counter() - t1)
                    books.pumps += 1
                    books.most = max(books.most, inflow.batches - before)


class Receiver:
    """The child process, from the parent's side."""

    def __init__(self, budget: int, arch: str = "cpu", timeout: float = 120.0):
        mp = multiprocessing.get_context("spawn")
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(target=_receiver, args=(child, budget, arch), daemon=True)
        self.proc.start()
        child.close()
        _, self.endpoint, self.info = self.recv(timeout)

    def recv(self, timeout: float = 30.0):
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the receiver did not answer in {timeout:g} s (alive: {self.proc.is_alive()})")
        return self.conn.recv()

    def ask(self, *cmd, timeout: float = 30.0):
        self.conn.send(cmd)
        return self.recv(timeout)

    def tell(self, *cmd) -> None:
        self.conn.send(cmd)

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self.ask("quit", timeout=10.0)
        except (RuntimeError, OSError, EOFError):
            pass
        self.proc.join(5.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5.0)
        self.conn.close()


# --- the sender's two links: ours and bare ZeroMQ ----------------------------------------------


def synthetic(n: int, matrix: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` particles in the sender's frame that ``matrix`` (the portal's transform) puts in the
    receiver's floor sink, inside its domain, falling slowly."""
    from waterrock.scene import load_scene

    dom = load_scene("default").domain
    lo, hi = np.add(dom.lower, 0.1), np.subtract(dom.upper, 0.1)
    there = np.column_stack([rng.uniform(lo[0], hi[0], n), rng.uniform(*SINK_Y, n), rng.uniform(lo[2], hi[2], n)])
    inv = np.linalg.inv(matrix)
    here = there @ inv[:3, :3].T + inv[:3, 3]
    vel = np.tile([0.0, -0.1, 0.0], (n, 1)) @ inv[:3, :3].T
    return here.astype(np.float32), vel.astype(np.float32)


class Ours:
    """A real Outgoing, fed the same synthetic particles every frame."""

    def __init__(self, ctx: zmq.Context, portal, endpoint: str, n: int):
        self.out = Outgoing(ctx, portal.model_copy(update={"peer": endpoint}), uuid.uuid4().hex)
        self.sock, self.n, self.window = self.out.sock, n, self.out.window
        self.positions, self.velocities = synthetic(n, self.out.matrix, np.random.default_rng(n))

    def send(self, now: float) -> int | None:
        seq = self.out.seq
        self.out.hand_over(self.positions, self.velocities)
        self.out.pump(now)
        return seq if self.out.seq > seq else None

    def pump(self, now: float) -> None:
        self.out.pump(now)

    def pending(self, seq: int) -> bool:
        return seq in self.out.in_flight

    @property
    def flying(self) -> int:
        return len(self.out.in_flight)

    def counters(self) -> dict:
        c = self.out.counters()
        return {k: c[k] for k in ("sent", "acknowledged", "drained", "refused", "resent", "bad")}

    def close(self) -> None:
        self.out.close()


class Raw:
    """A DEALER sending four prebuilt frames of our batch's lengths (the first carrying the
    sequence number), a window like ours; no encoding, no transform, no resends (what the socket
    would not take yet is sent at a later pump)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, n: int, window: int):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.setsockopt(zmq.SNDHWM, 4 * window)
        self.sock.connect(endpoint)
        z = np.zeros((n, 3), np.float32)
        lengths = [len(f) for f in Batch(uuid.uuid4().hex, "from_upstream", 10**6, np.zeros(n, np.uint64), z,
                                         z).frames()]
        self.head = bytearray(lengths[0])
        self.body = [zmq.Frame(b"\0" * k) for k in lengths[1:]]
        self.n, self.window, self.seq = n, window, 0
        self.in_flight: dict[int, bool] = {}  # seq -> sent
        self.sent = self.acknowledged = self.drained = 0

    def send(self, now: float) -> int | None:
        self.sent += self.n
        if len(self.in_flight) >= self.window:
            self.drained += self.n
            return None
        seq = self.seq
        self.in_flight[seq] = False  # not yet sent: sent at this pump or a later one, as ours
        self.seq += 1
        self.pump(now)
        return seq

    def pump(self, now: float) -> None:
        while True:
            try:
                reply = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            seq = struct.unpack("<q", reply[:8])[0]
            if seq in self.in_flight:
                del self.in_flight[seq]
                self.acknowledged += self.n
        for seq, sent in self.in_flight.items():
            if sent:
                continue
            self.head[:8] = struct.pack("<q", seq)
            try:
                self.sock.send_multipart([bytes(self.head), *self.body], zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break  # not connected yet (or full): at the next pump
            self.in_flight[seq] = True

    def pending(self, seq: int) -> bool:
        return seq in self.in_flight

    @property
    def flying(self) -> int:
        return len(self.in_flight)

    def counters(self) -> dict:
        return {"sent": self.sent, "acknowledged": self.acknowledged, "drained": self.drained}

    def close(self) -> None:
        self.sock.close(0)


def drive(link, seconds: float, fps: float = FPS, flush: float = FLUSH_S) -> dict:
    """Hand ``link.n`` particles over every frame for ``seconds``, pumping between frames as
    soon as an answer arrives; then wait (at most ``flush`` s) for what is in flight."""
    period = 1.0 / fps
    sent_at: dict[int, float] = {}
    latency, cost = [], []
    frames = late = 0
    start = due = time.monotonic()
    end = start + seconds

    def settle():
        now = time.monotonic()
        for seq in [s for s in sent_at if not link.pending(s)]:
            latency.append(now - sent_at.pop(seq))

    while due < end:
        now = time.monotonic()
        t0 = time.perf_counter()
        seq = link.send(now)
        spent = time.perf_counter() - t0
        if seq is not None:
            sent_at[seq] = now
        settle()
        frames += 1
        due += period
        if due < time.monotonic():
            late += 1
            due = time.monotonic()
        while (left := due - time.monotonic()) > 0:
            if link.sock.poll(1e3 * left, zmq.POLLIN):
                t0 = time.perf_counter()
                link.pump(time.monotonic())
                spent += time.perf_counter() - t0
                settle()
        cost.append(spent)
    seconds_run = time.monotonic() - start
    in_flight_end = link.flying
    deadline = time.monotonic() + flush
    while sent_at and time.monotonic() < deadline:
        link.sock.poll(10, zmq.POLLIN)
        link.pump(time.monotonic())  # and, for ours, the resends due
        settle()
    c = link.counters()
    return {"particles": link.n, "seconds": seconds_run, "frames": frames, "late_frames": late,
            "nominal_frames": int(round(seconds * fps)), "rate": c["sent"] / max(seconds_run, 1e-9),
            "latency": _lat(latency), "sender": _cost(cost), "in_flight_end": in_flight_end,
            "unanswered": len(sent_at), **c}


# --- the benchmark ------------------------------------------------------------------------------


def _ours(ctx, portal, rx: Receiver, n: int, seconds: float, mode: str) -> dict:
    rx.tell("mode", mode)
    rx.ask("mark")
    link = Ours(ctx, portal, rx.endpoint, n)
    try:
        r = drive(link, seconds)
    finally:
        link.close()
    r["receiver"] = rx.ask("mark")
    r["mode"] = mode
    r["counts_match"] = r["acknowledged"] == r["receiver"]["received"] and r["unanswered"] == 0
    return r


def _raw(ctx, endpoint: str, rx: Receiver, n: int, seconds: float, window: int) -> dict:
    rx.ask("mark")
    link = Raw(ctx, endpoint, n, window)
    try:
        r = drive(link, seconds)
    finally:
        link.close()
    r["receiver"] = rx.ask("mark")
    r["counts_match"] = r["acknowledged"] == r["receiver"]["messages"] * n and r["unanswered"] == 0
    return r


def sustained(r: dict, window: int) -> str | None:
    """Why a rate probe was not sustained, or None."""
    recv = r.get("receiver", {})
    if recv.get("refused"):  # the sender drains these too: named first, as the budget's
        return (f"the receiver refused {recv['refused']} (its budget full: up to {recv['most_batches']} hand-overs "
                f"a pump at {recv['fps']:.0f} frames a second)")
    if r["drained"]:
        return f"drained {r['drained']} (the window of {window} full)"
    if r["unanswered"] or r["in_flight_end"] > window // 2:
        return f"acknowledgements behind ({r['in_flight_end']} hand-overs in flight at the end)"
    if r["frames"] < 0.9 * r["nominal_frames"]:
        return f"the sender kept {r['frames']} of {r['nominal_frames']} frames"
    return None


def search(probe: Callable[[int], dict], start: int, top: int, window: int, log) -> dict:
    """Double the particles a frame from ``start`` while ``probe`` sustains them (up to ``top``);
    if ``start`` itself is not sustained, halve instead. The largest rate sustained."""
    probes, best, n, why = [], None, start, None
    down = False
    while 1 <= n <= top:
        r = probe(n)
        r["failed"] = sustained(r, window)
        probes.append(r)
        log(f"portals:   {n:>8} a frame: {r['rate']:>12,.0f}/s " + (r["failed"] or "sustained"))
        if r["failed"] is None:
            best = r if best is None or r["rate"] > best["rate"] else best
            if down or n >= top:
                break
            n = min(2 * n, top)
        else:
            why = r["failed"]
            if best is not None:
                break
            down = True
            n //= 2
    if best is not None and why is None:
        why = f"the search's top, {top} a frame"
    return {"probes": probes, "largest": None if best is None else {
        "particles": best["particles"], "rate": best["rate"], "bytes_per_s": best["rate"] * BYTES_A_PARTICLE},
        "stopped": why}


def _idle(rx: Receiver, seconds: float = 1.0) -> dict:
    """The receiver's frames while nothing arrives."""
    rx.ask("mark")
    time.sleep(seconds)
    return rx.ask("mark")


def run_benchmark(sizes=SIZES, seconds: float = SECONDS, rate_seconds: float = RATE_SECONDS,
                  raw_seconds: float = RAW_SECONDS, rate_start: int = RATE_START, rate_max: int = RATE_MAX,
                  raw_max: int = MAX_BATCH, modes=("work", "eager"), arch: str = "cpu",
                  log: Callable[[str], None] = print) -> dict:
    """Every measurement, as a dict (what ``waterrock bench portals`` prints and saves). The raw
    rate search goes on from where ours stopped up to ``raw_max`` a frame."""
    from waterrock.scene import load_scene

    t_start = time.monotonic()
    sizes = [int(n) for n in sizes]
    rate_max = min(int(rate_max), MAX_BATCH)
    portal = next(p for p in load_scene("upstream").portals if p.direction == "out")
    scene_budget = load_scene("default").fluid.max_particles
    # the latency on the scene as it is, unless the sizes need more room; the rate search with
    # room for the arrivals of three frames in one pump (a budget the solver's step pays for:
    # the grid's passes run over all of it)
    budgets = {"latency": scene_budget + max(0, 3 * max(sizes) - scene_budget // 2),
               "rate": scene_budget + 3 * rate_max}
    ctx = zmq.Context.instance()
    log(f"portals: starting the receiver (the default scene, {arch}, budget {budgets['latency']:,})")
    rx = Receiver(budgets["latency"], arch)
    receiver = {"scene": "default", "scene_budget": scene_budget, "arch": rx.info["arch"],
                "inflow": rx.info["inflow"], "sink_y": rx.info["sink_y"]}
    try:
        log("portals: warm-up")
        _ours(ctx, portal, rx, sizes[0], 1.0, "work")  # inject compiled, the connection's first use
        receiver["latency"] = {**rx.info, "idle": _idle(rx)}
        latency = []
        for n in sizes:
            z = np.zeros((n, 3))
            row = {"particles": n, "bytes": sum(len(f) for f in Batch("x" * 32, portal.peer_portal, 0,
                                                                      np.zeros(n, np.uint64), z, z).frames())}
            for mode in modes:
                log(f"portals: latency, {n} particles a frame, receiver {mode}")
                row[mode] = _ours(ctx, portal, rx, n, seconds, mode)
            latency.append(row)
        rx.tell("mode", "work")
        _, raw_endpoint = rx.ask("raw")
        for row in latency:
            log(f"portals: latency, {row['particles']} particles a frame, raw ZeroMQ")
            row["raw"] = _raw(ctx, raw_endpoint, rx, row["particles"], raw_seconds, portal.window)
        rx.ask("stop")
        log(f"portals: largest sustained rate, ours (the receiver's budget {budgets['rate']:,})")
        receiver["rate"] = {**rx.ask("budget", budgets["rate"], timeout=120.0)}
        receiver["rate"]["idle"] = _idle(rx)
        ours_rate = search(lambda n: _ours(ctx, portal, rx, n, rate_seconds, "work"), rate_start, rate_max,
                           portal.window, log)
        log("portals: largest sustained rate, raw ZeroMQ")
        _, raw_endpoint = rx.ask("raw")
        raw_start = ours_rate["largest"]["particles"] if ours_rate["largest"] else rate_start
        raw_rate = search(lambda n: _raw(ctx, raw_endpoint, rx, n, rate_seconds, portal.window), raw_start,
                          min(int(raw_max), MAX_BATCH), portal.window, log)
        rx.ask("stop")
    finally:
        rx.close()
    for row in latency:
        raw = row["raw"]["latency"]
        for mode in modes:
            ours = row[mode]["latency"]
            row[f"{mode}_over_raw_p50"] = ours["p50_ms"] / raw["p50_ms"] if ours["n"] and raw["n"] else None
            row[f"{mode}_over_raw_p99"] = ours["p99_ms"] / raw["p99_ms"] if ours["n"] and raw["n"] else None
    # what a work could live with: nothing drained and the receiver at 90 % of its idle frame rate
    fps_floor = 0.9 * receiver["rate"]["idle"]["fps"]
    keeps = [p for p in ours_rate["probes"] if p["failed"] is None and p["receiver"]["fps"] >= fps_floor]
    ours_rate["largest_at_frame_rate"] = None if not keeps else {
        "particles": max(keeps, key=lambda p: p["rate"])["particles"], "rate": max(p["rate"] for p in keeps),
        "fps_floor": fps_floor}
    o, r = ours_rate["largest"], raw_rate["largest"]
    return {
        "fps": FPS, "seconds": seconds, "rate_seconds": rate_seconds, "raw_seconds": raw_seconds, "modes": list(modes),
        "sender": {"scene": "upstream", "portal": portal.name, "peer_portal": portal.peer_portal,
                   "window": portal.window, "resend_s": RESEND_S, "transform": portal.transform.model_dump()},
        "receiver": receiver,
        "latency": latency,
        "rate": {"ours": ours_rate, "raw": raw_rate, "start": rate_start, "max": rate_max,
                 "ours_over_raw": o["rate"] / r["rate"] if o and r else None},
        "elapsed_s": time.monotonic() - t_start,
    }


def _f(v, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(result: dict) -> str:
    s, rc = result["sender"], result["receiver"]
    lat_rx, rate_rx = rc["latency"], rc["rate"]
    lines = [
        f"portals on 127.0.0.1 at {result['fps']:g} frames a second: sender a real Outgoing (the {s['scene']} "
        f"scene's {s['portal']}, window {s['window']}) fed synthetic particles; receiver a real Inflow into the "
        f"{rc['scene']} scene's Solver ({rc['arch']}) in a child process, the arrivals in its floor sink; raw = a "
        "bare DEALER/ROUTER, the same frames, a receiver that only counts",
        f"latency, hand_over -> acknowledged (ms; {result['seconds']:g} s a point, raw {result['raw_seconds']:g} s); "
        f"receiver budget {lat_rx['budget']:,}, idle at {lat_rx['idle']['fps']:.1f} frames a second, step "
        f"{_f(lat_rx['idle']['step']['median_ms'])} ms median",
    ]
    modes = result["modes"]
    head = f"{'particles':>9}{'bytes':>9}"
    for m in (*modes, "raw"):
        head += f"{m + ' p50':>11}{'p99':>8}"
    head += "".join(f"{m + '/raw p50':>14}" for m in modes)
    head += f"{'send ms':>9}{'recv pump ms':>13}{'recv fps':>9}{'acked=recv':>11}{'drained':>8}{'refused':>8}"
    lines.append(head)
    for row in result["latency"]:
        line = f"{row['particles']:>9}{row['bytes']:>9}"
        for m in (*modes, "raw"):
            lat = row[m]["latency"]
            line += f"{_f(lat['p50_ms']):>11}{_f(lat['p99_ms']):>8}"
        line += "".join(f"{_f(row[f'{m}_over_raw_p50'], '.1f'):>14}" for m in modes)
        w = row[modes[0]]
        line += (f"{_f(w['sender']['median_ms'], '.3f'):>9}{_f(w['receiver']['pump']['median_ms'], '.3f'):>13}"
                 f"{w['receiver']['fps']:>9.1f}{'yes' if all(row[m]['counts_match'] for m in modes) else 'NO':>11}"
                 f"{sum(row[m]['drained'] for m in modes):>8}{sum(row[m]['receiver']['refused'] for m in modes):>8}")
        lines.append(line)
    lines.append(f"  send ms: the sender's hand_over + pump a frame, median; recv pump ms: the receiver's "
                 f"Inflow.pump (parse, inject, acknowledge) in a frame a batch arrived, median ({modes[0]})")
    lines.append(f"largest sustained rate (doubling from {result['rate']['start']}, {result['rate_seconds']:g} s a "
                 f"probe, nothing drained); receiver budget {rate_rx['budget']:,}, idle at "
                 f"{rate_rx['idle']['fps']:.1f} frames a second, step {_f(rate_rx['idle']['step']['median_ms'])} ms "
                 "median:")
    lines.append(f"{'':<6}{'particles':>10}{'rate/s':>13}{'MB/s':>8}{'send ms':>9}{'recv pump ms':>13}"
                 f"{'recv fps':>9}{'p50 ms':>8}{'p99 ms':>8}{'refused':>8}  result")
    for who in ("ours", "raw"):
        for p in result["rate"][who]["probes"]:
            recv = p["receiver"]
            pump = _f(recv["pump"]["median_ms"], ".3f") if "pump" in recv else "-"
            fps = f"{recv['fps']:.1f}" if "fps" in recv else "-"
            lines.append(f"{who:<6}{p['particles']:>10}{p['rate']:>13,.0f}{p['rate'] * BYTES_A_PARTICLE / 1e6:>8.1f}"
                         f"{_f(p['sender']['median_ms'], '.3f'):>9}{pump:>13}{fps:>9}"
                         f"{_f(p['latency']['p50_ms']):>8}{_f(p['latency']['p99_ms']):>8}"
                         f"{recv.get('refused', 0):>8}  {p['failed'] or 'sustained'}")
    for who in ("ours", "raw"):
        rr = result["rate"][who]
        best = rr["largest"]
        lines.append(f"  {who}: " + (f"{best['particles']:,} particles a frame, {best['rate']:,.0f} particles/s "
                                     f"({best['bytes_per_s'] / 1e6:.1f} MB/s)" if best else "none sustained")
                     + f"; stopped: {rr['stopped']}")
    kept = result["rate"]["ours"].get("largest_at_frame_rate")
    if kept is not None:
        lines.append(f"  ours with the receiver at >= {kept['fps_floor']:.1f} frames a second (90 % of idle): "
                     f"{kept['particles']:,} particles a frame, {kept['rate']:,.0f} particles/s")
    ratio = result["rate"]["ours_over_raw"]
    lines.append(f"  ours / raw: {_f(ratio, '.3f')}  (run {result['elapsed_s']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="particles a frame (10 100 1000)")
    ap.add_argument("--seconds", type=float, default=SECONDS, help="seconds a latency point (4)")
    ap.add_argument("--rate-seconds", type=float, default=RATE_SECONDS, help="seconds a rate probe (2)")
    ap.add_argument("--rate-max", type=int, default=RATE_MAX, help="the rate search's largest size (51200)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    result = run_benchmark(args.sizes, args.seconds, args.rate_seconds, rate_max=args.rate_max)
    return report(result, table, args.json)


if __name__ == "__main__":
    main()
