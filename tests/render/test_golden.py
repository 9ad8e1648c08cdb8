"""A fixed-seed synthetic waterfall against a stored picture, within a tolerance that absorbs
rounding differences between Mesa versions but not a change of look; and the same waterfall,
with how packed its water is, in each shipped look ([render.look] preset), against one each.

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
from waterrock.render.settings import LOOKS, RenderSettings
from waterrock.render.target import OffscreenTarget

GOLDEN = Path(__file__).parent / "golden" / "waterfall_320x180.png"
SIZE = (320, 180)
SCENE_RENDER = {  # as a scene file's [render] section
    "resolution": SIZE, "trails": {"share": 0.5, "length": 24}, "projection": {"height": 2.6, "elevation_deg": 15.0},
    "lines": {"width": 6.0, "width_slow": 3.0},  # at 180 lines: 1 and 0.5 px
}
SETTINGS = RenderSettings.model_validate(SCENE_RENDER)


def render_waterfall(settings: RenderSettings = SETTINGS, packing: bool = False) -> np.ndarray:
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, settings, SIZE, sphere_rock(), 3000) as r:
        for snapshot in waterfall(3000, 45, seed=7, packing=packing):
            r.update(snapshot)
        r.render(target.framebuffer)
        return r.read_pixels()


def look_settings(name: str) -> RenderSettings:
    """The golden waterfall's settings in the look ``name``: the scene's keys over the preset's,
    the look's widths three times over, as the waterfall's (a picture of 180 lines)."""
    preset = LOOKS[name]["lines"]
    lines = {"width": 3 * preset["width"], "width_slow": 3 * preset["width_slow"]}
    return RenderSettings.model_validate({**SCENE_RENDER, "lines": lines, "look": {"preset": name}})


def assert_matches(image: np.ndarray, path: Path, regen: bool) -> None:
    """``image`` against the golden picture at ``path``, or written there with ``regen``."""
    if regen or not path.exists():
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), image[:, :, ::-1])
        if not regen:
            pytest.fail(f"no golden image yet: wrote {path}; look at it, commit it, run again")
    golden = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert golden.shape == image.shape
    diff = np.abs(golden.astype(int) - image.astype(int)).max(axis=2)
    assert diff.mean() < 1.0, f"{path.name}: mean difference {diff.mean():.2f} levels"
    assert (diff > 40).mean() < 0.002, f"{path.name}: {(diff > 40).mean():.2%} of pixels differ by more than 40 levels"


@pytest.mark.gl
def test_waterfall_matches_golden(gl_ctx, regen_golden):
    image = render_waterfall()
    assert_matches(image, GOLDEN, regen_golden)
    # And the picture is what we want: pale lines (bright, bluish white) on a dark ground.
    assert np.median(image) < 20 and image.max() > 150
    bright = image[image.max(axis=2) > 120]
    assert (bright[:, 2] >= bright[:, 0]).all()


@pytest.mark.gl
@pytest.mark.parametrize("name", list(LOOKS))
def test_each_look_matches_golden(gl_ctx, regen_golden, name):
    image = render_waterfall(look_settings(name), packing=True)
    assert_matches(image, GOLDEN.parent / f"look_{name.replace(' ', '_')}_320x180.png", regen_golden)
    # and it is the look it says: its ground where no water is, its lines' colour where water is
    ground = np.round(255 * np.asarray(LOOKS[name]["background"]))
    assert np.abs(image[0, 0].astype(float) - ground).max() <= 2
    ink = LOOKS[name]["lines"]["blend"] == "alpha"
    water = image.sum(axis=2) < ground.sum() - 60 if ink else image.sum(axis=2) > ground.sum() + 60
    assert water.mean() > 0.05, f"{name}: the water shows in {water.mean():.1%} of the picture"
