"""A fixed-seed synthetic waterfall against a stored picture, within a tolerance that absorbs
rounding differences between Mesa versions but not a change of look.

Regenerate after an intended change of look: ``pytest tests/render --regen-golden`` (or
``WATERROCK_REGEN_GOLDEN=1``), then look at the new PNG before committing it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.render.conftest import sphere_rock, waterfall
from waterrock.render.renderer import Renderer
from waterrock.render.settings import RenderSettings
from waterrock.render.target import OffscreenTarget

GOLDEN = Path(__file__).parent / "golden" / "waterfall_320x180.png"
SIZE = (320, 180)
SETTINGS = RenderSettings(
    resolution=SIZE, trails={"share": 0.5, "length": 24}, projection={"height": 2.6, "elevation_deg": 15.0},
    lines={"width": 6.0, "width_slow": 3.0},  # at 180 lines: 1 and 0.5 px
)


def render_waterfall() -> np.ndarray:
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, SETTINGS, SIZE, sphere_rock(), 3000) as r:
        for snapshot in waterfall(3000, 45, seed=7):
            r.update(snapshot)
        r.render(target.framebuffer)
        return r.read_pixels()


@pytest.mark.gl
def test_waterfall_matches_golden(gl_ctx, regen_golden):
    image = render_waterfall()
    if regen_golden or not GOLDEN.exists():
        GOLDEN.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(GOLDEN), image[:, :, ::-1])
        if not regen_golden:
            pytest.fail(f"no golden image yet: wrote {GOLDEN}; look at it, commit it, run again")
    golden = cv2.imread(str(GOLDEN), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert golden.shape == image.shape
    diff = np.abs(golden.astype(int) - image.astype(int)).max(axis=2)
    assert diff.mean() < 1.0, f"mean difference {diff.mean():.2f} levels"
    assert (diff > 40).mean() < 0.002, f"{(diff > 40).mean():.2%} of pixels differ by more than 40 levels"
    # And the picture is what we want: pale lines (bright, bluish white) on a dark ground.
    assert np.median(image) < 20 and image.max() > 150
    bright = image[image.max(axis=2) > 120]
    assert (bright[:, 2] >= bright[:, 0]).all()
