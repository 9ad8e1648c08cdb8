"""One frame from a sensor, and the checks that keep a corrupt one out of the tracker."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """A timestamped colour and/or depth image.

    timestamp  seconds; the sensor's clock where it has one, else time.monotonic()
    color      (H, W, 3) uint8 BGR (OpenCV's order), or None
    depth      (H, W) uint16 millimetres along the optical axis, 0 = no reading, or None
    index      frame number since the source was opened
    """

    timestamp: float
    color: np.ndarray | None = None
    depth: np.ndarray | None = None
    index: int = 0


class CorruptFrame(ValueError):
    """A frame that cannot be used: it is skipped and counted, the tracker goes on."""


def check_frame(frame: Frame, shape: tuple[int, int] | None = None) -> None:
    """Raise CorruptFrame unless ``frame`` holds a usable image (of ``shape`` when given)."""
    if not isinstance(frame, Frame):
        raise CorruptFrame(f"not a Frame: {type(frame).__name__}")
    if frame.color is None and frame.depth is None:
        raise CorruptFrame(f"frame {frame.index}: neither colour nor depth")
    if not isinstance(frame.timestamp, numbers.Real) or not np.isfinite(frame.timestamp):
        raise CorruptFrame(f"frame {frame.index}: timestamp {frame.timestamp!r}")
    d = frame.depth
    if d is not None:
        if not isinstance(d, np.ndarray) or d.dtype != np.uint16 or d.ndim != 2:
            kind = f"{d.dtype} {d.shape}" if isinstance(d, np.ndarray) else type(d).__name__
            raise CorruptFrame(f"frame {frame.index}: depth must be (H, W) uint16 mm, got {kind}")
        if d.size == 0:
            raise CorruptFrame(f"frame {frame.index}: depth is empty, {d.shape}")
        if shape is not None and d.shape != shape:
            raise CorruptFrame(f"frame {frame.index}: depth is {d.shape}, expected {shape}")
        if not d.any():
            raise CorruptFrame(f"frame {frame.index}: depth is all zeros (sensor dropout)")
    c = frame.color
    if c is not None:
        if not isinstance(c, np.ndarray) or c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 3:
            kind = f"{c.dtype} {c.shape}" if isinstance(c, np.ndarray) else type(c).__name__
            raise CorruptFrame(f"frame {frame.index}: colour must be (H, W, 3) uint8, got {kind}")
        if c.size == 0:  # some drivers hand one over while the sensor starts; it must not set the size
            raise CorruptFrame(f"frame {frame.index}: colour is empty, {c.shape}")
        if shape is not None and d is None and c.shape[:2] != shape:
            raise CorruptFrame(f"frame {frame.index}: colour is {c.shape[:2]}, expected {shape}")

