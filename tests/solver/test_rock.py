"""Ten simulated seconds of the default waterfall: no particle inside the rock."""

import numpy as np

from waterrock.scene import load_scene
from waterrock.solver.solver import Solver


def test_waterfall_stays_out_of_the_rock():
    scene = load_scene("default")
    s = Solver(scene, arch="cpu")
    r = scene.fluid.particle_radius
    sdf = s.boundary.rock_sdf
    deepest = np.inf
    on_rock = 0
    for frame in range(600):  # 10 s at 60 frames per second
        s.step()
        if frame % 30 == 29:
            x = s.snapshot().positions
            d = sdf.sample(x)
            deepest = min(deepest, float(d.min()))
            on_rock = max(on_rock, int(np.sum(d < 2 * r)))
            assert np.all(np.isfinite(x))
    assert deepest > -0.5 * r, f"a particle lies {-deepest * 1e3:.1f} mm inside the rock"
    assert on_rock > 100  # the water does run over the rock
    assert s.n_active() > 500
