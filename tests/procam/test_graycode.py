"""The Gray-code decode against OpenCV's own per-pixel decode, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.procam import graycode


def _captured(size, rng, contrast=0.6, ambient=30.0, noise=2.0, gamma=2.2):
    """The patterns as a camera of the projector's own pixels sees them: through the projector's
    gamma, dimmed, over ambient light, with noise (no geometry: the decode is per pixel)."""
    def seen(img):
        light = ambient + 255.0 * contrast * (img / 255.0) ** gamma
        return np.clip(np.rint(light + rng.normal(0, noise, img.shape)), 0, 255).astype(np.uint8)

    white, black = graycode.white_black(size)
    return [seen(p) for p in graycode.patterns(size)], seen(white), seen(black)


def test_pattern_count_and_order():
    frames = graycode.patterns((1920, 1080))
    cols, rows = graycode.bit_counts((1920, 1080))
    assert (cols, rows) == (11, 11) and len(frames) == 44
    # each frame is followed by its inverse
    for a, b in zip(frames[0::2], frames[1::2], strict=True):
        assert np.array_equal(255 - a, b)


def test_decode_recovers_every_pixel_and_agrees_with_opencv():
    size = (300, 200)
    rng = np.random.default_rng(1)
    caps, white, black = _captured(size, rng)
    d = graycode.decode(caps, white, black, size)
    yy, xx = np.mgrid[0:200, 0:300]
    assert d.valid.all()
    assert np.array_equal(d.column, xx) and np.array_equal(d.row, yy)
    pixels = rng.integers(0, [300, 200], size=(300, 2))
    reference = graycode.reference_decode(caps, white, black, size, pixels)
    ours = np.column_stack([d.column[pixels[:, 1], pixels[:, 0]], d.row[pixels[:, 1], pixels[:, 0]]])
    assert np.array_equal(ours, reference)


def test_untrusted_and_shadowed_pixels_are_marked_as_opencv_marks_them():
    size = (128, 64)
    rng = np.random.default_rng(2)
    caps, white, black = _captured(size, rng, contrast=0.03, noise=3.0)  # barely lit: bits drown in noise
    caps[5][:, :10] = caps[4][:, :10]  # a bit whose pattern and inverse are equal
    white[:, -10:] = black[:, -10:]  # a shadow
    d = graycode.decode(caps, white, black, size)
    assert not d.valid[:, :10].any() and d.shadow[:, -10:].all() and not d.valid[:, -10:].any()
    pixels = rng.integers(0, [128, 64], size=(200, 2))
    reference = graycode.reference_decode(caps, white, black, size, pixels)
    ours = np.column_stack([d.column[pixels[:, 1], pixels[:, 0]], d.row[pixels[:, 1], pixels[:, 0]]])
    assert np.array_equal(ours, reference)


def test_wrong_captures_are_named():
    size = (64, 32)
    caps, white, black = _captured(size, np.random.default_rng(3))
    with pytest.raises(ValueError, match="11 captures, but a 64x32 projector's Gray code has 22 frames"):
        graycode.decode(caps[:11], white, black, size)
    caps[3] = caps[3][:-1]
    with pytest.raises(ValueError, match="capture 3 is"):
        graycode.decode(caps, white, black, size)
