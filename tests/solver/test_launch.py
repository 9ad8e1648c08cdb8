"""A substep's launches replayed as a compiled graph do what the launches one by one do."""

import numpy as np

from tests.solver.conftest import make_scene
from waterrock.solver.solver import Solver


def _scene(method, emit=True):
    emitters = [{"shape": "rect", "center": [0.2, 0.25, 0.05], "direction": [0, -1, 0], "size": [0.04, 0.04],
                 "speed": 1.0}]
    return make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.3, 0.3, 0.1]},
        fluid={"particle_radius": 0.01, "max_particles": 2000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.1, 0.2, 0.1]}]},
        emitters=emitters if emit else [],
        solver={"method": method, "time_step": 2e-4 if method == "wcsph" else 1e-3},
    )


def test_graph_replay_matches_direct_launches():
    runs = []
    for graphs in (True, False):
        s = Solver(_scene("wcsph", emit=False), arch="cpu")  # emission's jitter draws random numbers
        s.graphs.enabled = graphs
        for _ in range(5):
            s.step(0.004)  # 20 substeps a frame, each sorting the buffers into the other
        snap = s.snapshot()
        order = np.argsort(snap.ids)
        runs.append((snap.positions[order], snap.velocities[order], len(s.graphs._compiled)))
    (x_g, v_g, compiled), (x_d, v_d, _) = runs
    assert len(x_g) == len(x_d) == 250
    np.testing.assert_allclose(x_g, x_d, atol=1e-6)
    np.testing.assert_allclose(v_g, v_d, atol=1e-5)
    # one graph for the run: the front and back buffers trading places changes no argument's type
    assert compiled == 1


def test_each_method_steps_through_graphs():
    for method in ("pbf", "dfsph"):
        s = Solver(_scene(method), arch="cpu")
        for _ in range(3):
            stats = s.step()
        # emitting runs after the graphs: PBF has one, DFSPH four (its iterations are a graph of their own)
        assert s.graphs.enabled and len(s.graphs._compiled) == {"pbf": 1, "dfsph": 4}[method]
        assert np.all(np.isfinite(s.snapshot().positions)) and stats["emitted"] > 0
