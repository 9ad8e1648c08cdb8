"""The solver unattended: a scene that validation accepts runs, each frame's work is bounded
(substeps, emission, obstacles), a NaN never reads memory outside the grid, and a particle
budget that does not fit is refused before it is built.

Where today's code would hang or crash, the solver runs in a subprocess with a timeout, so that
the fault shows as a failure here, not as a pytest that never ends or dies with it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.backend import init_backend
from waterrock.scene import SceneError, load_scene
from waterrock.snapshots import ObstacleSnapshot

ROOT = Path(__file__).parents[2]
HANG_TIMEOUT = 120  # s: each case below takes a few seconds once bounded, and for ever before


@pytest.fixture(scope="module", autouse=True)
def taichi_cpu():
    return init_backend("cpu")


def _solver(scene):
    from waterrock.solver.solver import Solver

    return Solver(scene, arch="cpu")


def _run(script: str, timeout: float = HANG_TIMEOUT) -> subprocess.CompletedProcess:
    """``script`` in a fresh Python at the repository's root; a hang fails the test, it does not
    stop the suite."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the solver still ran after {timeout} s")


def _last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- validation: what cannot run is refused, naming the key and the bound --------------------

TAP = {"center": [0.2, 0.5, 0.2], "radius": 0.04}


@pytest.mark.parametrize(
    ("sections", "names"),
    [
        ({"emitters": [{**TAP, "speed": 1e30}]}, ["emitters[0].speed", "solver.max_speed"]),
        ({"emitters": [{**TAP, "rate": 1e12}]}, ["emitters[0].rate", "fluid.max_particles", "solver.frame_rate"]),
        ({"solver": {"time_step": 1e-9}}, ["solver.time_step", "substeps"]),
        ({"solver": {"frame_rate": 1e-3}}, ["frame_rate"]),
        ({"solver": {"cfl": 1e-6, "max_substeps": 100_000}}, ["max_substeps"]),
        ({"fluid": {"rest_density": 1e20}}, ["rest_density"]),
    ],
    ids=["emitter-speed", "emitter-rate", "time-step", "frame-rate", "max-substeps", "rest-density"],
)
def test_a_scene_that_cannot_run_is_refused_with_the_key_and_the_bound(sections, names):
    with pytest.raises(SceneError) as err:
        make_scene(**sections)
    msg = str(err.value)
    for name in names:
        assert name in msg, msg


def test_the_shipped_scenes_are_within_the_bounds():
    for name in ("default", "dam_break", "upstream"):
        load_scene(name, check_files=False)


# --- the solver's own bounds, for what still gets through -----------------------------------

EMIT = """
    import json, sys
    import numpy as np
    from tests.solver.conftest import make_scene
    from waterrock.solver.solver import Solver

    scene = make_scene(fluid={{"particle_radius": 0.02, "max_particles": 2000}},
                       emitters=[{{"center": [0.2, 0.5, 0.2], "radius": 0.04}}])
    # past validation, as a scene built in code may be
    emitter = scene.emitters[0].model_copy(update={update})
    s = Solver(scene.model_copy(update={{"emitters": [emitter]}}), arch="cpu")
    emitted = 0
    for frame_dt in {frames}:
        st = s.step(frame_dt)
        emitted += st["emitted"]
    snap = s.snapshot()
    print(json.dumps({{"emitted": emitted, "substeps": s.substeps_total, "active": len(snap),
                      "capacity": s.state.capacity,
                      "finite": bool(np.all(np.isfinite(snap.positions)))}}))
"""


@pytest.mark.parametrize(
    ("update", "frames"),
    [
        ({"speed": 1e30}, [1 / 60] * 3),  # the emission phase past 2^53: phase -= 1 does nothing
        ({"rate": 1e12}, [1 / 60] * 3),  # 10^8 layers a substep
        ({}, [1e5]),  # a frame of a day, as frame_rate 1e-5 makes: 5 million layers
    ],
    ids=["speed-1e30", "rate-1e12", "frame-of-1e5-s"],
)
def test_emission_per_frame_is_bounded_by_the_budget(update, frames):
    out = _last_json(_run(EMIT.format(update=update, frames=frames)))
    assert 0 < out["emitted"] <= out["substeps"] * out["capacity"]
    assert out["active"] <= out["capacity"] and out["finite"]


@pytest.mark.parametrize(
    ("solver", "frame_dt"),
    [
        ({"time_step": 1e-9}, 1 / 60),  # 1.7e7 substeps
        ({"cfl": 1e-6, "max_substeps": 100_000}, 1 / 60),  # 1e5 substeps
        ({"time_step": 0.01}, 1e5),  # a frame of a day at a valid time step: 1e7 substeps
    ],
    ids=["time-step-1e-9", "cfl-1e-6", "frame-of-1e5-s"],
)
def test_substeps_per_frame_are_bounded(solver, frame_dt):
    from waterrock.solver.solver import MAX_SUBSTEPS

    scene = make_scene(fluid={"particle_radius": 0.02, "max_particles": 500}, solver={"method": "dfsph"})
    s = _solver(scene.model_copy(update={"solver": scene.solver.model_copy(update=solver)}))
    s._max_speed = 20.0  # as after a fast frame: the CFL condition asks for its most
    n, dt = s.plan(frame_dt)
    assert 1 <= n <= MAX_SUBSTEPS and dt > 0


# --- a NaN never reaches memory outside the grid --------------------------------------------

NAN_BORN = """
    import json
    import numpy as np
    from tests.solver.conftest import make_scene
    from waterrock.solver.solver import Solver

    scene = make_scene(fluid={"particle_radius": 0.02, "max_particles": 2000,
                              "blocks": [{"lower": [0, 0, 0], "upper": [0.4, 0.2, 0.4]}]},
                       emitters=[{"center": [0.2, 0.5, 0.2], "radius": 0.04}], solver={"method": "pbf"})
    # rho0 = 1e20 passes today's validation; rho0^2 overflows float32 and PBF's lambdas are NaN
    s = Solver(scene.model_copy(update={"fluid": scene.fluid.model_copy(update={"rest_density": 1e20})}), arch="cpu")
    nonfinite = 0
    for _ in range(10):
        nonfinite += s.step()["nonfinite"]
    snap = s.snapshot()
    print(json.dumps({"nonfinite": nonfinite, "finite": bool(np.all(np.isfinite(snap.positions)))}))
"""


def test_a_nan_born_inside_a_substep_never_reads_outside_the_grid():
    """The run used to end in a segfault (exit 139): the neighbour loop read cell_start far
    outside its array at the NaN's row."""
    out = _last_json(_run(NAN_BORN))
    assert out["finite"]  # what the snapshot shows: every NaN retired (and counted)
    assert out["nonfinite"] > 0


def test_a_non_finite_particle_is_retired_by_the_grid_sort():
    """The sort is the last gate before the neighbour loop: a particle whose position is not
    finite (or past the bound that retire uses) leaves the active ones there, counted."""
    from waterrock.solver.sources import NONFINITE

    scene = make_scene(fluid={"particle_radius": 0.02, "max_particles": 2000,
                              "blocks": [{"lower": [0, 0, 0], "upper": [0.4, 0.2, 0.4]}]})
    s = _solver(scene)
    n = s.n_active()
    x = s.state.x.to_numpy()
    x[:4] = [[np.nan, 0.1, 0.1], [0.1, np.inf, 0.1], [0.1, 0.1, -np.inf], [1e30, 0.1, 0.1]]
    s.state.x.from_numpy(x)
    s.sources.counters.fill(0)
    s.grid.build(s.state)
    assert s.n_active() == n - 4
    assert int(s.state.free_head.to_numpy()[0]) == n - 4
    assert int(s.grid.cell_start_numpy()[s.grid.n_cells]) == n - 4
    assert int(s.sources.counters.to_numpy()[NONFINITE]) == 4
    ids = s.state.ids.to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(s.state.capacity))  # retired, not lost


# --- obstacles beyond what acts cost nothing each, and log one line -------------------------


def _python_calls(fn) -> int:
    """Python and C functions called while ``fn`` runs: the work that grows with a loop over
    obstacles in Python, counted without a clock."""
    calls = [0]

    def count(frame, event, arg):
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls[0]


def _crowd(n: int, bad: bool = False) -> ObstacleSnapshot:
    rng = np.random.default_rng(0)
    c = rng.uniform(0.05, 0.35, (n, 3))
    if bad:
        c[:, 0] = np.nan
    return ObstacleSnapshot.spheres(c, 0.02)


def test_obstacles_beyond_what_acts_are_dropped_in_bulk():
    scene = make_scene(fluid={"particle_radius": 0.02, "max_particles": 500})
    s = _solver(scene)
    s.set_obstacles(_crowd(100))  # compiled, and the warning's first line written
    for bad in (False, True):
        few = _python_calls(lambda b=bad: s.set_obstacles(_crowd(100, b)))
        many = _python_calls(lambda b=bad: s.set_obstacles(_crowd(10_000, b)))
        assert many <= few + 20, f"{many} calls for 10,000 obstacles, {few} for 100 (bad: {bad})"
    s.set_obstacles(_crowd(10_000))
    assert s.obstacles.count == len(s.obstacles.snapshot) == 64
    s.step()


def test_bad_obstacles_log_one_line_not_one_each(caplog):
    scene = make_scene(fluid={"particle_radius": 0.02, "max_particles": 500})
    s = _solver(scene)
    with caplog.at_level(logging.WARNING, logger="waterrock"):
        for _ in range(3):  # three frames of a tracker gone mad
            problems = s.set_obstacles(_crowd(10_000, bad=True))
    lines = [r for r in caplog.records if r.name.startswith("waterrock")]
    assert len(lines) == 1, f"{len(lines)} lines"
    assert "10000" in lines[0].getMessage().replace(",", "")
    assert 1 <= len(problems) <= 20  # the first few named, the rest counted
    assert s.obstacles.count == 0


# --- a particle budget is checked against what it really allocates -------------------------

def _allocated_bytes(solver) -> int:
    """Every array a solver holds, on the device (Taichi ndarrays) and on the host (numpy), found
    by walking its attributes: what it really allocates, counted, not sampled from the RSS (which
    a fresh environment's allocator and Taichi's memory pool make differ by hundreds of MB)."""
    import taichi as ti

    seen, total = set(), 0

    def walk(o, depth):
        nonlocal total
        if id(o) in seen or depth > 4:
            return
        seen.add(id(o))
        if isinstance(o, ti.lang._ndarray.Ndarray):
            total += o.to_numpy().nbytes
        elif isinstance(o, np.ndarray):
            total += o.nbytes
        elif isinstance(o, (list, tuple)):
            for x in o:
                walk(x, depth + 1)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x, depth + 1)
        elif type(o).__module__.startswith("waterrock") and hasattr(o, "__dict__"):
            for x in vars(o).values():
                walk(x, depth + 1)

    walk(solver, 0)
    return total


def test_a_budget_is_checked_against_what_the_solver_really_allocates(monkeypatch):
    """memory_needed counts at least what a solver allocates a particle (its arrays and host
    copies, and a snapshot of every slot); with memory free for just under that, the solver is
    refused, naming the key; with room, it builds."""
    import waterrock.solver.solver as solver_module
    from waterrock.solver.solver import MEMORY_HEADROOM, Solver, SolverError, memory_needed

    def scene(capacity):
        return make_scene(domain={"lower": [0, 0, 0], "upper": [1.0, 0.6, 1.0]},
                          fluid={"particle_radius": 0.01, "max_particles": capacity,
                                 "blocks": [{"lower": [0, 0, 0], "upper": [1.0, 0.4, 1.0]}]},
                          solver={"method": "pbf", "substeps": 1, "max_substeps": 1, "pbf_iterations": 1})

    sizes, held = (20_000, 40_000), []
    for capacity in sizes:
        s = Solver(scene(capacity), arch="cpu")
        s.step()
        snap = s.snapshot()
        held.append(_allocated_bytes(s) + sum(a.nbytes for a in (snap.positions, snap.velocities, snap.ids)))
        del s, snap
    per_particle = (held[1] - held[0]) / (sizes[1] - sizes[0])
    counted, _ = memory_needed(scene(sizes[1]))
    print(f"counted {counted} bytes a particle, allocated {per_particle:.0f}")
    assert per_particle > 100 and counted >= per_particle, (counted, per_particle)
    assert counted <= 1.5 * per_particle, (counted, per_particle)  # and not far above it

    full = scene(sizes[1])

    def free(share: float, lists: bool) -> None:  # memory free for a share of what the budget needs
        per, cells = memory_needed(full, lists=lists)
        need = sizes[1] * per + cells
        monkeypatch.setattr(solver_module, "_available_memory_bytes", lambda: int(share * need / MEMORY_HEADROOM))

    free(0.95, lists=False)
    with pytest.raises(SolverError, match="fluid.max_particles"):
        Solver(full, arch="cpu")
    free(0.95, lists=True)  # room for the particles, not for their neighbour lists: the rows are walked
    assert not Solver(full, arch="cpu").grid.lists
    free(1.5, lists=True)
    assert Solver(full, arch="cpu").grid.lists
