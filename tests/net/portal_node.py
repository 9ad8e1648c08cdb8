"""One work for the portal tests, in a process of its own: a real solver and its portals, stepped
as fast as it goes (or at ``--fps``), its books written to ``--out`` (atomically, a few times a
second, so a work killed mid-run leaves its last books) and, for an inflow, the hand-over ids it
took. A sender stops stepping after ``--frames`` and then waits for its hand-overs in flight to
be acknowledged (at most ``--flush`` seconds); a receiver runs until ``--stop`` appears.

    python -m tests.net.portal_node SCENE.json --out BOOKS.json [--frames N] [--fps F] [--stop PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from waterrock import files
from waterrock.net.portal import PortalLinks
from waterrock.scene import parse_scene
from waterrock.solver.solver import Solver


def books(links: PortalLinks, frames: int, ids: bool) -> dict:
    out = {"run": links.run_id, "frames": frames, "portals": links.counters()}
    if ids:
        out["ids"] = {i.name: [[s, a.tolist()] for s, a in i.ids] for i in links.inflows}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scene", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--fps", type=float, default=None)
    ap.add_argument("--stop", type=Path, default=None)
    ap.add_argument("--flush", type=float, default=10.0)
    args = ap.parse_args()
    scene = parse_scene(json.loads(args.scene.read_text()), args.scene)
    solver = Solver(scene, arch="cpu")
    links = PortalLinks(scene, record_ids=True)
    frame, last_write, start = 0, 0.0, time.monotonic()
    files.write_json(args.out, books(links, frame, True))
    try:
        while args.frames is None or frame < args.frames:
            if args.stop is not None and args.stop.exists():
                break
            solver.step()
            links.exchange(solver)
            frame += 1
            now = time.monotonic()
            if now - last_write > 0.2:
                files.write_json(args.out, books(links, frame, True))
                last_write = now
            if args.fps:
                time.sleep(max(0.0, start + frame / args.fps - time.monotonic()))
        deadline = time.monotonic() + args.flush
        while any(o.in_flight for o in links.outgoing) and time.monotonic() < deadline:
            links.exchange(solver)  # nothing new leaves: the solver is not stepped
            time.sleep(0.01)
        if args.stop is not None:  # a receiver answers resends until it is told to stop
            while not args.stop.exists():
                links.exchange(solver)
                time.sleep(0.01)
    finally:
        files.write_json(args.out, books(links, frame, True))
        links.close()
    print(json.dumps({"frames": frame, "active": int(np.count_nonzero(solver.state.flags.to_numpy() & 1))}))


if __name__ == "__main__":
    main()
