"""DFSPH's solves report what they did: iterations per frame, and a solve that ran out of them."""

from tests.solver.conftest import make_scene
from waterrock.solver.solver import Solver


def _column(**solver):
    return make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.12, 0.3, 0.12]},
        fluid={"particle_radius": 0.01, "max_particles": 2000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.12, 0.2, 0.12]}]},
        solver={"method": "dfsph", "frame_rate": 50, "time_step": 0.0025, **solver},
    )


def test_converging_solves_size_the_next_frames_launches():
    s = Solver(_column(), arch="cpu")
    for _ in range(10):
        stats = s.step()
    assert stats["density_converged"] and stats["divergence_converged"]
    # the mean over the frame's 8 substeps is at most the most any one of them took
    assert 0 <= stats["density_iterations"] <= stats["density_iterations_max"]
    # the next frame launches the most a substep needed, plus two
    assert s.method.launch == [stats["divergence_iterations_max"] + 2, stats["density_iterations_max"] + 2]


def test_a_solve_that_runs_out_of_iterations_is_reported():
    # a tolerance no solve meets in 3 iterations: every substep stops unconverged
    s = Solver(_column(density_tolerance=1e-7, max_iterations=3), arch="cpu")
    stats = s.step()
    assert not stats["density_converged"]
    assert stats["density_iterations_max"] == 3
    assert s.method.launch[1] == 3  # doubled, and held at max_iterations
