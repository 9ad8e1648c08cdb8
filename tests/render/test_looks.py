"""[render.look]: presets resolved under the scene's own keys, and the water's state weighing on
its lines in the expected direction: loose water (a splash) dimmer than a packed sheet, a trail
brighter where it bends sharply (an impact) and nowhere else. Golden pictures of each look are
in test_golden.py."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
from pydantic import ValidationError

from waterrock.render.renderer import Renderer
from waterrock.render.settings import LOOKS, LookName, LookSettings, RenderSettings
from waterrock.render.target import OffscreenTarget
from waterrock.snapshots import ParticleSnapshot

SIZE = (160, 90)
DT = 1.0 / 60.0
# plain light, the lines alike from head to tail: what changes is the look's weights alone
PLAIN = {"resolution": SIZE, "background": (0.0, 0.0, 0.0), "trails": {"share": 1.0, "length": 16},
         "projection": {"height": 2.0, "elevation_deg": 0.0},
         "lines": {"width": 6.0, "width_slow": 6.0, "opacity": 0.3, "opacity_slow": 0.3, "taper": 0.0, "fade": 0.0}}


def test_the_default_look_is_pale_on_deep():
    assert set(get_args(LookName)) == set(LOOKS)
    assert RenderSettings() == RenderSettings(look={"preset": "pale on deep"})
    # the preset's table is the fields' defaults, so a scene without [render.look] looks as before
    d = RenderSettings()
    for key, value in LOOKS["pale on deep"].items():
        if isinstance(value, dict):
            for k, v in value.items():
                assert getattr(getattr(d, key), k) == v, f"{key}.{k}"
        else:
            assert getattr(d, key) == value, key


def test_a_preset_fills_the_look_and_the_scene_overrides_it():
    s = RenderSettings.model_validate({"background": (0.5, 0.5, 0.5), "lines": {"width": 3.0},
                                       "look": {"preset": "ink", "impact": (2.0, 0.0)}})
    ink = LOOKS["ink"]
    assert s.background == (0.5, 0.5, 0.5) and s.exposure == ink["exposure"]  # the scene's key, the preset's
    assert s.lines.width == 3.0 and s.lines.width_slow == ink["lines"]["width_slow"]
    assert s.lines.color == ink["lines"]["color"] and s.lines.blend == "alpha"
    assert s.rock.color == ink["rock"]["color"] and s.rock.visible is True  # what a preset leaves out: default
    assert s.look.impact == (2.0, 0.0) and s.look.packing == ink["look"]["packing"]
    # a section given as a model counts only the keys it set
    glow = RenderSettings(look=LookSettings(preset="glow"), lines={"fade": 0.5})
    assert glow.lines.color == LOOKS["glow"]["lines"]["color"] and glow.lines.fade == 0.5
    # the settings as they run, dumped and read again (OSC control does), are the same settings
    assert RenderSettings.model_validate(s.model_dump()) == s


def test_an_unknown_preset_is_refused_naming_the_key():
    with pytest.raises(ValidationError) as err:
        RenderSettings.model_validate({"look": {"preset": "sepia"}})
    text = str(err.value)
    assert "look.preset" in text and "pale on deep" in text and "sepia" in text
    with pytest.raises(ValidationError, match="loose"):
        LookSettings(loose=0.9, packed=0.5)


def _path_snapshots(paths: np.ndarray, packing: float | None = None, missing: tuple[int, ...] = ()):
    """Snapshots of particles that follow ``paths`` (frames, n, 3), one a frame but the frames
    ``missing`` (a render node's lost ones), with velocities from the positions and ``packing``
    for all (None: the snapshot has none)."""
    frames, n, _ = paths.shape
    ids = np.arange(n, dtype=np.int32)
    for k in range(frames):
        if k in missing:
            continue
        vel = (paths[k] - paths[max(k - 1, 0)]) / DT
        yield ParticleSnapshot(k, k * DT, paths[k].astype(np.float32), vel.astype(np.float32), ids,
                               np.zeros(n, bool), None if packing is None else np.full(n, packing, np.float32))


def _light(paths: np.ndarray, look: dict, packing: float | None = None, missing: tuple[int, ...] = ()) -> np.ndarray:
    """The picture of the trails along ``paths`` in PLAIN settings with ``look``, as floats."""
    settings = RenderSettings.model_validate({**PLAIN, "look": look})
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, settings, SIZE, None, paths.shape[1]) as r:
        for snapshot in _path_snapshots(paths, packing, missing):
            r.update(snapshot)
        r.render(target.framebuffer)
        return r.read_pixels().astype(float)


def _sheet(frames: int = 16, rows: int = 5) -> np.ndarray:
    """``rows`` particles side by side falling straight at 1.5 m/s: a sheet seen edge on."""
    x = np.linspace(-0.5, 0.5, rows)
    y = 0.6 - 1.5 * DT * np.arange(frames)
    return np.stack([np.stack([x, np.full(rows, yk), np.zeros(rows)], axis=1) for yk in y])


@pytest.mark.gl
def test_loose_water_is_dimmer_than_packed(gl_ctx):
    look = {"packing": (0.6, 0.3), "impact": (0.0, 0.0)}
    packed = _light(_sheet(), look, 1.0)
    loose = _light(_sheet(), look, 0.35)  # a lone drop's density: a splash
    absent = _light(_sheet(), look, None)
    assert np.array_equal(absent, packed)  # no packing in the snapshot: taken as packed
    assert loose.sum() < 0.6 * packed.sum(), (loose.sum(), packed.sum())
    # without the weight, how packed the water is changes nothing
    unweighted = {"packing": (0.0, 0.0), "impact": (0.0, 0.0)}
    assert np.array_equal(_light(_sheet(), unweighted, 0.35), _light(_sheet(), unweighted, 1.0))


def _bend(frames: int = 16, turn_at: int = 8, speed: float = 2.0) -> np.ndarray:
    """Three particles moving right at ``speed``, turned straight down at frame ``turn_at``:
    water striking a wall (an acceleration of speed * sqrt(2) / DT, 170 m/s^2)."""
    start = np.array([[-0.6, 0.5, 0.0], [-0.6, 0.3, 0.0], [-0.6, 0.1, 0.0]])
    out = []
    for k in range(frames):
        right = min(k, turn_at) * speed * DT
        down = max(k - turn_at, 0) * speed * DT
        out.append(start + np.array([right, -down, 0.0]))
    return np.stack(out)


@pytest.mark.gl
def test_a_trail_is_brighter_at_its_bend(gl_ctx):
    paths = _bend()
    on = _light(paths, {"impact": (1.5, 0.5), "packing": (0.0, 0.0)})
    off = _light(paths, {"impact": (0.0, 0.0), "packing": (0.0, 0.0)})
    # where the turns are on the picture (x right, y down; the picture is 2 m high, centred)
    px = SIZE[1] / 2.0
    cols = np.round(SIZE[0] / 2 + paths[8, :, 0] * px).astype(int)
    rows = np.round(SIZE[1] / 2 - paths[8, :, 1] * px).astype(int)
    near = np.zeros(SIZE[::-1], bool)
    for c, r in zip(cols, rows, strict=True):
        near[r - 2:r + 3, c - 2:c + 3] = True
    gain_near = on.sum(axis=2)[near].sum() / off.sum(axis=2)[near].sum()
    assert gain_near > 1.4, gain_near
    # far from the bends (the straight runs) the lines are as they were
    far = ~np.zeros_like(near)
    for c, r in zip(cols, rows, strict=True):
        far[max(r - 6, 0):r + 7, max(c - 6, 0):c + 7] = False
    assert off.sum(axis=2)[far].sum() > 0
    assert np.abs(on - off)[far].max() <= 1.0


@pytest.mark.gl
def test_free_fall_is_no_impact(gl_ctx):
    """Gravity bends every trail a little: a falling, curving trail (1 g) is no impact."""
    t = np.arange(16)[:, None] * DT
    x0 = np.linspace(-0.6, 0.2, 4)[None, :]
    paths = np.stack([x0 + 1.0 * t, 0.6 + 0.0 * x0 - 0.5 * 9.81 * t**2, 0.0 * x0 + 0.0 * t], axis=2)
    on = _light(paths, {"impact": (1.5, 0.5), "packing": (0.0, 0.0)})
    off = _light(paths, {"impact": (0.0, 0.0), "packing": (0.0, 0.0)})
    assert off.sum() > 0 and np.array_equal(on, off)


@pytest.mark.gl
def test_a_missed_frame_is_no_impact(gl_ctx):
    """A render node that lost a frame joins the positions either side of the gap: the water's
    speed along that longer segment is the same, and the trail stays as it was."""
    t = np.arange(16)[:, None] * DT
    x0 = np.linspace(-0.6, 0.2, 4)[None, :]
    paths = np.stack([x0 + 1.5 * t, 0.3 + 0.0 * x0 + 0.0 * t, 0.0 * x0 + 0.0 * t], axis=2)
    weights = {"impact": (1.5, 0.5), "packing": (0.0, 0.0)}
    on = _light(paths, weights, missing=(9,))
    off = _light(paths, {"impact": (0.0, 0.0), "packing": (0.0, 0.0)}, missing=(9,))
    assert off.sum() > 0 and np.array_equal(on, off)


@pytest.mark.gl
def test_set_look_changes_the_weights_live(gl_ctx):
    """Renderer.set_look sets a new look's weights and colours as uniforms: the same renderer
    draws what a renderer made with them draws."""
    paths = _bend()
    settings = RenderSettings.model_validate({**PLAIN, "look": {"impact": (0.0, 0.0)}})
    wanted = RenderSettings.model_validate({**PLAIN, "look": {"preset": "glow"}})
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, settings, SIZE, None, 3) as r:
        for snapshot in _path_snapshots(paths, 0.5):
            r.update(snapshot)
        r.set_look(wanted)
        r.render(target.framebuffer)
        live = r.read_pixels()
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, wanted, SIZE, None, 3) as r:
        for snapshot in _path_snapshots(paths, 0.5):
            r.update(snapshot)
        r.render(target.framebuffer)
        made = r.read_pixels()
    assert np.array_equal(live, made)
