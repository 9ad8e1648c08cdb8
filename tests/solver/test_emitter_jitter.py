"""Emitters place their water without the lattice's artefacts: no column of the opening's lattice
shows in what they emit (a falling sheet would show it as a comb of parallel lines), no two new
particles come closer than the pressure solve bears, the same seed emits the same water, and
the scene's rate is honoured."""

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.solver.solver import Solver
from waterrock.solver.sources import EMITTED, JITTER, SPREAD, Sources

RADIUS = 0.012  # the default scene's: a spacing of 0.024 m
SHEET = {"shape": "rect", "center": [0.0, 0.8, 0.0], "direction": [0.25, -1.0, 0.0], "size": [0.08, 0.5],
         "speed": 1.2}  # the default scene's falling sheet: 21 lattice columns along its length
SUBSTEP = 1.0 / 120.0


@pytest.fixture(scope="module")
def solver():
    scene = make_scene(domain={"lower": [-0.5, 0.0, -0.5], "upper": [0.5, 1.0, 0.5]},
                       fluid={"particle_radius": RADIUS, "max_particles": 8000}, emitters=[SHEET])
    return Solver(scene, arch="cpu")


def emitted(s: Solver, seconds: float, sources: Sources | None = None, dt: float = SUBSTEP):
    """Positions, velocities and the EMITTED count of what the emitters bring in over ``seconds``
    from a restart, with no substep between: each particle where emission placed it."""
    s.state.clear()
    sources = sources or s.sources
    sources.restart()
    for _ in range(round(seconds / dt)):
        sources.emit(s.state, dt, s.obstacles.args(), s.boundary.contact)
    n = int(s.state.free_head.to_numpy()[0])
    return s.state.x.to_numpy()[:n], s.state.v.to_numpy()[:n], int(sources.counters.to_numpy()[EMITTED])


def lattice_echo(x: np.ndarray, spacing: float) -> float:
    """The highest peak of the normalised autocorrelation, at lags from half a spacing to four, of
    a fine histogram of the positions along the sheet's length (its widest axis across the
    direction), within its middle: about 1 for water kept in the lattice's columns, near 0 for
    water spread evenly across."""
    d = np.asarray(SHEET["direction"]) / np.linalg.norm(SHEET["direction"])
    across = x - x.mean(axis=0)
    across -= np.outer(across @ d, d)
    length = np.linalg.svd(across, full_matrices=False)[2][0]
    w = across @ length
    counts, _ = np.histogram(w, bins=np.arange(-0.2, 0.2, spacing / 16))
    h = counts - counts.mean()
    ac = np.correlate(h, h, "full")[len(h) - 1:]
    ac /= ac[0]
    return float(ac[8:65].max())


def test_no_lattice_column_shows(solver):
    x, _, _ = emitted(solver, 1.0)
    echo = lattice_echo(x, solver.spacing)
    assert echo < 0.3, f"the lattice shows: autocorrelation {echo:.2f} at a lag of a spacing or more"


def test_new_particles_keep_apart_and_spread_a_little(solver):
    """Three layers in one launch: no two particles closer than 1 - JITTER spacings, so that the
    pressure solve does not fling them apart; the velocities spread across the opening alone,
    by a few percent of the speed."""
    for _ in range(5):
        x, v, _ = emitted(solver, 3.0 / 50.0, dt=3.0 / 50.0)  # 50 layers a second: 1 + 3 layers
        gaps = np.linalg.norm(x[:, None] - x[None], axis=2) + np.eye(len(x))
        assert gaps.min() >= (1.0 - JITTER) * solver.spacing - 1e-6
    velocity = 1.2 * np.asarray(SHEET["direction"]) / np.linalg.norm(SHEET["direction"])
    dv = v - velocity
    along = dv @ velocity / 1.2
    assert np.abs(along).max() < 1e-5
    across = np.linalg.norm(dv, axis=1) / 1.2
    assert across.max() <= SPREAD * np.sqrt(2.0) + 1e-6 and across.mean() > 0.25 * SPREAD


def test_a_seed_emits_the_same_water(solver):
    def rows(x):
        return x[np.lexsort(x.T[::-1])]  # the slots are taken in parallel, in any order

    first, _, _ = emitted(solver, 0.2)
    again, _, _ = emitted(solver, 0.2)  # restarted: the generator back at its seed
    scene = solver.scene
    other, _, _ = emitted(solver, 0.2, Sources(scene.emitters, scene.sinks, solver.spacing, seed=1))
    assert np.array_equal(rows(first), rows(again))
    assert first.shape == other.shape and not np.allclose(rows(first), rows(other))


@pytest.mark.parametrize("rate", [None, 2000.0])
def test_the_rate_is_honoured(solver, rate):
    scene = solver.scene
    sheet = scene.emitters[0].model_copy(update={"rate": rate})
    sources = Sources([sheet], scene.sinks, solver.spacing)
    per_layer = sources.count[0]
    assert per_layer == 3 * 21
    expected = rate or per_layer * 1.2 / solver.spacing  # the default fills the opening at rest density
    assert sources.rate() == pytest.approx(expected)
    _, _, count = emitted(solver, 1.0, sources)
    assert abs(count - expected) <= per_layer  # whole layers: the first at once
