"""The peer scripts' side of the protocol with ``waterrock.bench.peers`` (numpy only)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def parse_args(description: str) -> tuple[dict, Path, str]:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("case", type=Path, help="the dam break, as written by waterrock.bench.cases.DamBreak.to_json")
    ap.add_argument("out", type=Path, help="folder for result.json and positions.npy")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (peers that have a choice)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    return json.loads(a.case.read_text(encoding="utf-8")), a.out, a.device


def write_result(out: Path, positions: np.ndarray, **result) -> None:
    np.save(out / "positions.npy", np.asarray(positions, dtype=np.float32))
    result.setdefault("threads", os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    (out / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
