"""Bad input gets a clear message naming the problem, and loses nothing else."""

import logging

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.scene import SceneError, load_scene
from waterrock.snapshots import ObstacleSnapshot
from waterrock.solver.mesh_sdf import MeshError
from waterrock.solver.solver import Solver, SolverError


def _water(**extra):
    return make_scene(
        fluid={"particle_radius": 0.02, "max_particles": 2000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.4, 0.2, 0.4]}]},
        **extra,
    )


def test_unknown_key_and_bad_value_name_file_and_key(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[domain]\nlower = [0, 0, 0]\nupper = [1, 1, 1]\n[fluid]\nparticle_radius = -1\nbogus = 3\n'
                 '[solver]\nmethod = "sph"\n')
    with pytest.raises(SceneError) as err:
        load_scene(p)
    msg = str(err.value)
    assert str(p) in msg
    assert "[fluid.particle_radius]" in msg and "greater than 0" in msg
    assert "[fluid.bogus] unknown key" in msg
    assert "[solver.method]" in msg


def test_wrong_scene_name_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="default"):
        load_scene("no_such_scene")


def test_missing_and_corrupt_mesh(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        Solver(_water(rock={"mesh": str(tmp_path / "nope.obj")}), arch="cpu")
    bad = tmp_path / "broken.obj"
    bad.write_bytes(b"\x00\xffthis is not a mesh\n" * 10)
    with pytest.raises(MeshError, match="broken.obj"):
        Solver(_water(rock={"mesh": str(bad)}), arch="cpu")


def test_budget_beyond_memory_is_refused():
    scene = make_scene(fluid={"particle_radius": 0.02, "max_particles": 50_000_000})
    with pytest.raises(SolverError, match="max_particles"):
        Solver(scene.model_copy(update={"fluid": scene.fluid.model_copy(update={"max_particles": 10**9})}))


def test_nan_obstacle_is_dropped_with_a_warning_and_the_rest_act(caplog):
    s = Solver(_water(), arch="cpu")
    snap = ObstacleSnapshot.spheres([[0.2, 0.1, 0.2], [np.nan, 0.1, 0.2], [0.1, 0.1, 0.1]],
                                    [0.05, 0.05, 99.0])
    with caplog.at_level(logging.WARNING):
        problems = s.set_obstacles(snap)
    assert len(problems) == 3  # a and b of the NaN one, the radius of the huge one
    assert any("not finite" in p for p in problems) and any("radius 99" in p for p in problems)
    assert s.obstacles.count == 1
    assert "obstacle ignored" in caplog.text
    s.step()
    assert np.all(np.isfinite(s.snapshot().positions))


def test_nan_particles_are_retired_not_spread():
    s = Solver(_water(emitters=[{"center": [0.2, 0.5, 0.2], "radius": 0.04}]), arch="cpu")
    s.step()
    x = s.state.x.to_numpy()
    active = np.flatnonzero(s.state.flags.to_numpy() & 1)
    bad = active[:7]
    x[bad] = np.nan
    s.state.x.from_numpy(x)
    n_before = s.n_active()
    st = s.step()
    assert st["nonfinite"] == 7
    snap = s.snapshot()
    assert np.all(np.isfinite(snap.positions)) and np.all(np.isfinite(snap.velocities))
    assert s.n_active() == n_before - 7 + st["emitted"]
    ids = s.state.ids.to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(s.state.capacity))


def test_bad_frame_dt():
    s = Solver(_water(), arch="cpu")
    with pytest.raises(ValueError, match="frame_dt"):
        s.step(float("nan"))


@pytest.mark.parametrize("method, foreign, owner", [("pbf", "stiffness", "wcsph"), ("wcsph", "pbf_iterations", "pbf"),
                                                     ("dfsph", "vorticity_epsilon", "pbf")])
def test_a_key_of_another_method_is_refused_with_the_key_named(tmp_path, method, foreign, owner):
    """[solver] is validated per method: each method's keys are its own (scene.SOLVER_SETTINGS)."""
    p = tmp_path / "mixed.toml"
    p.write_text(f'[domain]\nlower = [0, 0, 0]\nupper = [1, 1, 1]\n[solver]\nmethod = "{method}"\n{foreign} = 2\n')
    with pytest.raises(SceneError) as err:
        load_scene(p)
    assert f"[solver.{foreign}] not a setting of method = '{method}' (it is one of {owner}'s)" in str(err.value)


def test_each_method_reads_its_own_settings_and_pbf_is_the_default(tmp_path):
    from waterrock.scene import DFSPHSettings, PBFSettings, WCSPHSettings

    p = tmp_path / "s.toml"
    p.write_text("[domain]\nlower = [0, 0, 0]\nupper = [1, 1, 1]\n[solver]\npbf_iterations = 7\n")
    assert isinstance(load_scene(p).solver, PBFSettings) and load_scene(p).solver.pbf_iterations == 7
    p.write_text('[domain]\nlower = [0, 0, 0]\nupper = [1, 1, 1]\n[solver]\nmethod = "dfsph"\nmax_iterations = 9\n')
    assert isinstance(load_scene(p).solver, DFSPHSettings) and load_scene(p).solver.max_iterations == 9
    p.write_text('[domain]\nlower = [0, 0, 0]\nupper = [1, 1, 1]\n[solver]\nmethod = "wcsph"\nexponent = 6.5\n')
    assert isinstance(load_scene(p).solver, WCSPHSettings) and load_scene(p).solver.exponent == 6.5
    p.write_text('[domain]\nlower = [0, 0, 0]\nupper = [1, 1, 1]\n[solver]\nmethod = "sph"\n')
    with pytest.raises(SceneError, match=r"\[solver.method\] must be one of pbf, dfsph, wcsph, not 'sph'"):
        load_scene(p)
