"""Gray-code structured light: the patterns an output projects, and their decoding.

Each output shows the Gray code of its column index, one bit plane at a time from the most
significant, each followed by its inverse, then the same for its row index (Inokuchi et al.
1984; Salvi et al., "Pattern codification strategies in structured light systems", 2004).
A camera pixel's bit is whether it saw the plane brighter than its inverse: comparing the two
instead of a fixed threshold is what makes the decode indifferent to the rock's albedo, the
ambient light and the projector's and camera's gamma. A full white and a full black frame mark
the pixels no output light reaches (shadow).

The patterns are OpenCV's (``cv2.structured_light.GrayCodePattern``, opencv-contrib), so the
order and meaning of the frames are theirs, and its per-pixel ``getProjPixel`` is the reference
the tests hold this decoder to. That call costs about 10 us a pixel (9 s for a 1280x720
camera); :func:`decode` does every pixel at once with numpy bit planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# OpenCV's defaults: a pixel is lit when white - black exceeds BLACK_THRESHOLD, and a bit is
# trusted when the pattern and its inverse differ by at least WHITE_THRESHOLD (8-bit levels).
BLACK_THRESHOLD = 40
WHITE_THRESHOLD = 5


def _pattern(size: tuple[int, int]):
    w, h = size
    if w < 2 or h < 2:
        raise ValueError(f"a projector of {w}x{h} pixels has nothing to code")
    return cv2.structured_light.GrayCodePattern.create(int(w), int(h))


def bit_counts(size: tuple[int, int]) -> tuple[int, int]:
    """Bit planes for the columns and for the rows of a projector of ``size`` (w, h)."""
    w, h = size
    return int(np.ceil(np.log2(w))), int(np.ceil(np.log2(h)))


def patterns(size: tuple[int, int]) -> list[np.ndarray]:
    """The frames to project, in order: each column bit plane and its inverse, then each row
    bit plane and its inverse; (h, w) uint8, 0 or 255."""
    ok, frames = _pattern(size).generate()
    if not ok:
        raise RuntimeError(f"OpenCV could not make the Gray-code patterns for {size}")
    return [np.ascontiguousarray(f) for f in frames]


def white_black(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    w, h = size
    return np.full((h, w), 255, np.uint8), np.zeros((h, w), np.uint8)


@dataclass(frozen=True)
class Decoded:
    """For each camera pixel: the projector column and row that lit it (-1 where none), and
    whether it is trusted (lit, and every bit it uses clear of the noise). With ``coarse`` bits
    allowed, a pixel whose finest bit planes were lost is given the centre of the group of
    projector pixels its other bits name, so column and row are then half-integers."""

    column: np.ndarray  # (H, W) int32, or float32 with coarse bits
    row: np.ndarray  # (H, W)
    valid: np.ndarray  # (H, W) bool
    shadow: np.ndarray  # (H, W) bool: no light of this output reaches the pixel
    coarse: int = 0  # the finest bit planes a trusted pixel may have lost

    @property
    def share_valid(self) -> float:
        return float(self.valid.mean())


def _gray_to_binary(bits: np.ndarray) -> np.ndarray:
    """Bit planes (n, H, W) of Gray codes, most significant first, to their integers (H, W):
    b_0 = g_0, b_k = b_(k-1) xor g_k."""
    binary = np.logical_xor.accumulate(bits, axis=0)
    weights = (1 << np.arange(bits.shape[0] - 1, -1, -1, dtype=np.int64)).astype(np.int32)
    return np.tensordot(weights, binary.astype(np.int32), axes=(0, 0)).astype(np.int32)


def _trailing_lost(trusted: np.ndarray) -> np.ndarray:
    """How many of the finest bit planes, counted from the last, are untrusted in a row ((n, H, W)
    bools, most significant first): (H, W)."""
    n = trusted.shape[0]
    lost = np.zeros(trusted.shape[1:], np.int32)
    still = np.ones(trusted.shape[1:], bool)
    for k in range(n - 1, -1, -1):
        still &= ~trusted[k]
        lost += still
    return lost


def _code(bits: np.ndarray, trusted: np.ndarray, coarse: int) -> tuple[np.ndarray, np.ndarray]:
    """The projector coordinate of each pixel from its bit planes, and whether it is trusted:
    every bit, or all but at most ``coarse`` of the finest (then the centre of the group)."""
    if coarse == 0:
        return _gray_to_binary(bits), trusted.all(axis=0)
    lost = _trailing_lost(trusted)
    n = bits.shape[0]
    kept = np.arange(n)[:, None, None] < (n - lost)[None]
    ok = (lost <= coarse) & np.all(trusted | ~kept, axis=0)
    value = _gray_to_binary(bits & kept)  # the lost planes read as 0 ...
    # ... and b_k = b_(k-1) xor g_k carries the last kept bit through them: clear those, then centre
    group = (1 << lost).astype(np.int32)
    value = (value // group) * group
    return value + (group - 1) / 2.0, ok


def decode(captures, white: np.ndarray, black: np.ndarray, size: tuple[int, int],
           black_threshold: int = BLACK_THRESHOLD, white_threshold: int = WHITE_THRESHOLD,
           coarse: int = 0) -> Decoded:
    """Decode the camera's captures of :func:`patterns` (same order, grey (H, W) uint8 each)
    and of the full white and black frames into the projector pixel of each camera pixel.

    Where a bit's pattern and inverse differ by less than ``white_threshold`` the pixel is not
    trusted (a stripe edge falls on it, or too little light); where white - black is at most
    ``black_threshold`` it is in shadow. Projector pixels past the output's edge (codes that the
    patterns never show) are not trusted either. With ``coarse`` 0, the same rules as OpenCV's
    ``getProjPixel``. ``coarse`` k > 0 keeps pixels that lost only their k finest bit planes:
    where a projector pixel is smaller than a camera pixel (a projector of 1920 columns over
    the width a 1280-column camera sees) the finest stripes blur to grey in the camera, and
    without this most of the picture would be left out."""
    cols_n, rows_n = bit_counts(size)
    frames = [np.asarray(c) for c in captures]
    if len(frames) != 2 * (cols_n + rows_n):
        raise ValueError(f"{len(frames)} captures, but a {size[0]}x{size[1]} projector's Gray code has "
                         f"{2 * (cols_n + rows_n)} frames ({cols_n} column and {rows_n} row bit planes, "
                         f"each with its inverse)")
    shape = frames[0].shape
    for i, f in enumerate([*frames, np.asarray(white), np.asarray(black)]):
        if f.shape != shape or f.ndim != 2:
            raise ValueError(f"capture {i} is {f.shape}: every capture must be one grey image of {shape}")
    stack = np.stack(frames).astype(np.int16)
    plane, inverse = stack[0::2], stack[1::2]
    bits = plane > inverse
    trusted = np.abs(plane - inverse) >= white_threshold
    shadow = (np.asarray(white, np.int16) - np.asarray(black, np.int16)) <= black_threshold
    column, col_ok = _code(bits[:cols_n], trusted[:cols_n], coarse)
    row, row_ok = _code(bits[cols_n:], trusted[cols_n:], coarse)
    valid = col_ok & row_ok & ~shadow & (column < size[0]) & (row < size[1])
    dtype = np.int32 if coarse == 0 else np.float32
    column = np.where(valid, column, -1).astype(dtype)
    row = np.where(valid, row, -1).astype(dtype)
    return Decoded(column, row, valid, shadow, coarse)


def reference_decode(captures, white, black, size, pixels, black_threshold: int = BLACK_THRESHOLD,
                     white_threshold: int = WHITE_THRESHOLD) -> np.ndarray:
    """OpenCV's own per-pixel decode at ``pixels`` ((N, 2) x, y): (N, 2) column, row, -1 where
    it reports an error or a shadow. Slow (about 10 us a pixel): for tests and benchmarks."""
    g = _pattern(size)
    g.setBlackThreshold(int(black_threshold))
    g.setWhiteThreshold(int(white_threshold))
    frames = [np.ascontiguousarray(c) for c in captures]
    shadow = (np.asarray(white, np.int16) - np.asarray(black, np.int16)) <= black_threshold
    out = np.full((len(pixels), 2), -1, np.int32)
    for k, (x, y) in enumerate(np.asarray(pixels, np.int64)):
        if shadow[y, x]:
            continue
        error, proj = g.getProjPixel(frames, int(x), int(y))
        if not error:
            out[k] = proj
    return out
