"""Record any source to the depth-recording format, so a night at the venue replays at a desk.

``out`` ending in ``.npz`` writes one compressed archive; any other path is a folder of 16-bit
PNGs. Both are read back by :class:`waterrock.tracking.sources.DepthRecordingSource`.

Neither holds frames in memory (a 640 x 480 RGB-D camera gives about 36 MB a second), and both
are a valid recording of the frames so far when the recording stops early: Ctrl-C, SIGTERM
(`waterrock record`), a camera that fails, a disk that fills. The archive's frames go to a
scratch folder beside it as they come and are packed into it at the end (an .npy entry needs
its frame count in its header); the next recording to the same archive removes the scratch of
one killed outright. The folder's index and meta.json are on disk from the first frame on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from waterrock import files
from waterrock.progress import progress
from waterrock.rate_limit import RateLimitedLog
from waterrock.tracking.frame import CorruptFrame, Frame, check_frame
from waterrock.tracking.sources import FrameSource, open_source

log = logging.getLogger(__name__)

COPY_CHUNK = 1 << 18  # bytes read back at a time while packing: memory stays at this, not the recording


def _meta(source: FrameSource) -> dict:
    meta: dict = {"source": source.describe(), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if source.calibration is not None:
        meta["calibration"] = source.calibration.to_dict()
    return meta


class _Spool:
    """One array a frame, appended raw to a file: what becomes one (frames, ...) .npy entry."""

    def __init__(self, path: Path, like: np.ndarray) -> None:
        self.file: BinaryIO = path.open("w+b")
        self.shape, self.dtype = like.shape, like.dtype
        self.count = 0

    def fits(self, a: np.ndarray | None) -> bool:
        return a is not None and a.shape == self.shape and a.dtype == self.dtype

    def append(self, a) -> None:
        self.file.write(np.ascontiguousarray(a, self.dtype).data)  # no copy of a frame already contiguous
        self.count += 1

    def pack(self, zf: zipfile.ZipFile, name: str) -> None:
        """Write the spooled frames as ``name``.npy into ``zf``, COPY_CHUNK bytes at a time."""
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.count, *self.shape)}
        self.file.flush()
        self.file.seek(0)
        with zf.open(f"{name}.npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array_header_1_0(entry, header)
            shutil.copyfileobj(self.file, entry, COPY_CHUNK)

    def close(self) -> None:
        self.file.close()


def _sigterm_as_ctrl_c(_signum, _frame) -> None:
    """record_command's SIGTERM: the way Ctrl-C goes, so the frames so far are packed. Its default
    ended the process at once, with no recording and the scratch folder left behind."""
    log.warning("received SIGTERM: ending the recording")
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_ends_the_recording() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt within the block; the previous handler after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back; the default then
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def _ctrl_c_held(what: str) -> Iterator[None]:
    """Finish ``what`` through a Ctrl-C, then raise it: the Ctrl-C that stopped a recording is
    often pressed twice, and the second must not throw away the recording being packed. One
    more Ctrl-C during the block abandons it. A SIGTERM that record_command turns into Ctrl-C
    is held the same way. Only the main thread receives signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[int] = []

    def hold(signum, _frame) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)
        log.warning("finishing %s; Ctrl-C again to abandon it", what)

    held = [signal.SIGINT]
    if signal.getsignal(signal.SIGTERM) is _sigterm_as_ctrl_c:
        held.append(signal.SIGTERM)
    previous = {sig: signal.signal(sig, hold) for sig in held}
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back; Python's own then
        for sig, handler in previous.items():
            signal.signal(sig, signal.default_int_handler if handler is None else handler)
    if asked:
        raise KeyboardInterrupt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _remove_dead_scratch(out: Path) -> None:
    """Remove the scratch folders of recordings to ``out`` that died (SIGKILL, a power cut: nothing
    packed them), hundreds of MB a minute each, hidden beside it. One whose process runs stays."""
    name = re.compile(re.escape(f".{out.name}.") + r"(\d+)\.[a-z0-9_]{8}\.frames")  # mkdtemp's 8 characters
    for p in out.parent.iterdir():
        m = name.fullmatch(p.name)
        if m and p.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            log.info("removed %s, the frames of a recording to %s that died", p.name, out.name)


class _NpzWriter:
    """Frames spooled to a scratch folder beside ``out``, packed into ``out`` by :meth:`seal`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_scratch(out)
        # the recorder's pid in the name: the next recording to ``out`` tells a dead one's from a live one's
        self.scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=".frames"))
        self.images: dict[str, _Spool] | None = None  # set by the first frame: the streams it has
        self.timestamps = self.index = None
        self.warn = RateLimitedLog(log)  # a camera that changes its size mid-way: not a line a frame

    def add(self, frame: Frame, n: int) -> bool:
        """Spool ``frame`` as number ``n``; False (left out, logged) if its images do not match
        the first frame's: one archive array holds every frame of a stream, all of one shape."""
        arrays = {"depth": frame.depth, "color": frame.color}
        if self.images is None:
            self.images = {k: _Spool(self.scratch / k, a) for k, a in arrays.items() if a is not None}
            self.timestamps = _Spool(self.scratch / "timestamps", np.float64(0))
            self.index = _Spool(self.scratch / "index", np.int64(0))
        if not all(spool.fits(arrays[k]) for k, spool in self.images.items()):
            self.warn.warning("record: left out frame %d: its images are not the first frame's (%s)", frame.index,
                        ", ".join(f"{k} {None if a is None else a.shape}" for k, a in arrays.items()))
            return False
        for k, spool in self.images.items():
            spool.append(arrays[k])
        self.timestamps.append(frame.timestamp)
        self.index.append(n)
        return True

    def seal(self, meta: dict) -> None:
        """Pack what was spooled into ``out`` (through files.replacing), then drop the scratch."""
        try:
            with _ctrl_c_held(str(self.out)), files.replacing(self.out) as f, \
                    zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                if self.images is None:  # not one frame: an empty recording, still one that reads
                    empty = {"timestamps": np.zeros(0, np.float64), "index": np.zeros(0, np.int64)}
                    for k, a in empty.items():
                        _write_small(zf, k, a)
                else:
                    for k, spool in {**self.images, "timestamps": self.timestamps, "index": self.index}.items():
                        spool.pack(zf, k)
                _write_small(zf, "meta", np.asarray(json.dumps(meta)))
        finally:
            for spool in [*(self.images or {}).values(), self.timestamps, self.index]:
                if spool is not None:
                    spool.close()
            shutil.rmtree(self.scratch, ignore_errors=True)


def _write_small(zf: zipfile.ZipFile, name: str, a: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w") as entry:
        np.lib.format.write_array(entry, a, allow_pickle=False)


class _PngWriter:
    """A folder of PNGs whose index (timestamps.txt) is flushed each frame and whose meta.json is
    written before the first: a recording stopped any way, even killed, reads up to its last
    indexed frame, calibration included."""

    def __init__(self, out: Path, meta: dict) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        files.write_json(out / "meta.json", {**meta, "frames": 0})
        self.index = (out / "timestamps.txt").open("w", encoding="utf-8")

    def _image(self, name: str, image: np.ndarray | None) -> None:
        if image is not None and not cv2.imwrite(str(self.out / name), image):
            raise OSError(f"{self.out / name}: could not be written (disk full?)")

    def add(self, frame: Frame, n: int) -> bool:
        """Write ``frame``'s images, then its line in the index: an indexed frame is whole."""
        self._image(f"depth_{n:06d}.png", frame.depth)
        self._image(f"color_{n:06d}.png", frame.color)
        self.index.write(f"{n} {frame.timestamp!r}\n")
        self.index.flush()
        return True

    def seal(self, meta: dict) -> None:
        try:
            self.index.flush()
            os.fsync(self.index.fileno())
        finally:
            self.index.close()
        files.write_json(self.out / "meta.json", meta)


def record(
    source: FrameSource, out_path: str | Path, seconds: float | None = None, frames: int | None = None
) -> int:
    """Write ``source`` to ``out_path`` until ``seconds`` (wall clock) or ``frames`` pass, or it ends.

    Returns the number of frames written. Corrupt frames are left out (and logged). Stopped
    early (Ctrl-C, an error of the source or the disk), the frames so far are kept as a valid
    recording and the exception goes on up.
    """
    if seconds is None and frames is None:
        raise ValueError("record: give seconds or frames, or a live source would record forever")
    out = Path(out_path)
    meta = _meta(source)
    writer = _NpzWriter(out) if out.suffix == ".npz" else _PngWriter(out, meta)
    start = time.monotonic()
    n = 0
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
                if writer.add(frame, n):
                    n += 1
                    advance(1)
    finally:
        writer.seal({**meta, "frames": n})
    return n


def record_command(
    source_spec: str, out: str | Path, seconds: float = 10.0, frames: int | None = None
) -> int:
    """`waterrock record SOURCE OUT --seconds S`: open a source by its spec and record it. SIGTERM
    stops the recording as Ctrl-C does: the frames so far are kept, and KeyboardInterrupt goes on up."""
    source = open_source(source_spec, loop=False, realtime=True)
    with _sigterm_ends_the_recording():
        n = record(source, out, seconds=seconds, frames=frames)
    log.info("recorded %d frames of %s to %s", n, source.describe(), out)
    return n
