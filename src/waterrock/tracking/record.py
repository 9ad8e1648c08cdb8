"""Record any source to the depth-recording format, so a night at the venue replays at a desk.

``out`` ending in ``.npz`` writes one compressed archive (small recordings, tests); any other
path is a folder of 16-bit PNGs, written frame by frame so a long night never sits in memory.
Both are read back by :class:`waterrock.tracking.sources.DepthRecordingSource`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from waterrock.progress import progress
from waterrock.tracking.frame import CorruptFrame, check_frame
from waterrock.tracking.sources import FrameSource, open_source

log = logging.getLogger(__name__)


def _meta(source: FrameSource) -> dict:
    meta: dict = {"source": source.describe(), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if source.calibration is not None:
        meta["calibration"] = source.calibration.to_dict()
    return meta


def record(
    source: FrameSource, out_path: str | Path, seconds: float | None = None, frames: int | None = None
) -> int:
    """Write ``source`` to ``out_path`` until ``seconds`` (wall clock) or ``frames`` pass, or it ends.

    Returns the number of frames written. Corrupt frames are left out (and logged).
    """
    if seconds is None and frames is None:
        raise ValueError("record: give seconds or frames, or a live source would record forever")
    out = Path(out_path)
    as_npz = out.suffix == ".npz"
    if not as_npz:
        out.mkdir(parents=True, exist_ok=True)
    depths, colors, stamps, indices = [], [], [], []
    start = time.monotonic()
    n = 0
    ts_file = None if as_npz else (out / "timestamps.txt").open("w", encoding="utf-8")
    try:
        with progress(f"record {out.name}", total=frames, unit=" frames") as advance:
            for frame in source:
                if frames is not None and n >= frames:
                    break
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                try:
                    check_frame(frame)
                except CorruptFrame as err:
                    log.warning("record: left out %s", err)
                    continue
                if as_npz:
                    depths.append(frame.depth)
                    colors.append(frame.color)
                else:
                    if frame.depth is not None:
                        cv2.imwrite(str(out / f"depth_{n:06d}.png"), frame.depth)
                    if frame.color is not None:
                        cv2.imwrite(str(out / f"color_{n:06d}.png"), frame.color)
                    ts_file.write(f"{n} {frame.timestamp!r}\n")
                stamps.append(frame.timestamp)
                indices.append(n)
                n += 1
                advance(1)
    finally:
        if ts_file is not None:
            ts_file.close()
    meta = _meta(source)
    meta["frames"] = n
    if as_npz:
        arrays = {
            "timestamps": np.asarray(stamps, np.float64),
            "index": np.asarray(indices, np.int64),
            "meta": np.asarray(json.dumps(meta)),
        }
        if depths and all(d is not None for d in depths):
            arrays["depth"] = np.stack(depths)
        if colors and all(c is not None for c in colors):
            arrays["color"] = np.stack(colors)
        np.savez_compressed(out, **arrays)
    else:
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return n


def record_command(
    source_spec: str, out: str | Path, seconds: float = 10.0, frames: int | None = None
) -> int:
    """`waterrock record SOURCE OUT --seconds S`: open a source by its spec and record it."""
    source = open_source(source_spec, loop=False, realtime=True)
    n = record(source, out, seconds=seconds, frames=frames)
    log.info("recorded %d frames of %s to %s", n, source.describe(), out)
    return n
