"""``waterrock bench frame --sizes``: the scene made of finer or coarser particles (scaled_scene),
run near steady at each size, and the largest count at 60 fps interpolated between the sizes
(bench/frame.py). No timing is judged here: the figures are in benchmarks/ and the closing notes."""

from __future__ import annotations

import json
import math

import pytest

from waterrock.app.cli import build_parser
from waterrock.bench.command import main
from waterrock.bench.figures import figures
from waterrock.bench.frame import largest_within, run_frame_sizes, scaled_scene, table
from waterrock.scene import Scene, SceneError, load_scene
from waterrock.solver.sources import opening_lattice

ROCK_HILL_STEADY = 3200  # the rock hill's water at its own size (scenes/rock_hill.toml: about 3,300)


def _volume_flow(scene: Scene) -> float:
    """m^3/s all emitters bring: the layers' lattice points at the speed over the spacing (solver/sources.py),
    each a particle of spacing^3."""
    sp = scene.fluid.spacing
    return sum(len(opening_lattice(e, sp)) * e.speed / sp for e in scene.emitters) * sp**3


def test_scaled_scene_follows_the_volume_law():
    own = load_scene("rock_hill")
    assert scaled_scene(own, 3000, 3000) == own  # f = 1: the scene itself
    small, large = scaled_scene(own, 6000, 3000), scaled_scene(own, 48000, 3000)  # f = 2 and 16
    for s, f in ((small, 2.0), (large, 16.0)):
        assert isinstance(s, Scene) and s.path == own.path and s.emitters == own.emitters
        assert s.fluid.particle_radius == pytest.approx(own.fluid.particle_radius * f ** (-1 / 3))
        assert s.fluid.max_particles == math.ceil(own.fluid.max_particles * f)
        # the same water a second in smaller particles: the particles a second grow by f (lattice rounding aside)
        assert _volume_flow(s) == pytest.approx(_volume_flow(own), rel=0.25)
    assert large.fluid.particle_radius < small.fluid.particle_radius
    assert large.fluid.max_particles > small.fluid.max_particles
    # the SDF cell keeps the scene's ratio to the spacing, never coarser than the scene's, capped
    assert own.rock.sdf_resolution < small.rock.sdf_resolution < large.rock.sdf_resolution
    assert large.rock.sdf_resolution == math.ceil(own.rock.sdf_resolution * 16 ** (1 / 3))
    assert scaled_scene(own, 1500, 3000).rock.sdf_resolution == own.rock.sdf_resolution
    assert scaled_scene(own, 3_000_000, 3000).rock.sdf_resolution == 256
    # an explicit rate is particles a second: it grows by f with them
    rated = own.model_copy(update={"emitters": [own.emitters[0].model_copy(update={"rate": 100.0})]})
    assert scaled_scene(rated, 12000, 3000).emitters[0].rate == pytest.approx(400.0)


def test_a_scaled_scene_is_validated_as_a_loaded_one():
    own = load_scene("rock_hill")
    with pytest.raises(SceneError, match="invalid scene"):  # 43 cm particles: the domain is thinner than 2 supports
        scaled_scene(own, 1, 3000)


def test_a_share_outside_the_trails_range_is_a_usage_error(capsys):
    assert main(build_parser().parse_args(["bench", "frame", "--sizes", "8000", "--share", "2"])) == 2
    assert "--share is a share of the particles in [0.001, 1], not 2" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["frame", "governor"])
def test_an_unknown_scene_is_a_usage_error_before_anything_runs(capsys, which):
    assert main(build_parser().parse_args(["bench", which, "--scene", "nosuch", "--sizes", "8000"])) == 2
    err = capsys.readouterr().err
    assert "--scene nosuch: no scene file 'nosuch'" in err and "Traceback" not in err


def test_largest_within_interpolates_log_log_and_never_extrapolates():
    # ms proportional to N: 16.67 ms at 1000 * 16.67 / 5
    got = largest_within([(10_000, 50.0), (1000, 5.0)], budget_ms=1000 / 60)
    assert got["how"] == "interpolated" and got["bracket"] == [1000, 10_000]
    assert got["particles"] == pytest.approx(1000 * (1000 / 60) / 5.0, abs=1)
    # a power 1.5 between the sizes: exact on it
    got = largest_within([(1000, 4.0), (8000, 4.0 * 8**1.5)], budget_ms=16.0)
    assert got["particles"] == pytest.approx(1000 * 4.0 ** (1 / 1.5), abs=1)
    # the largest size within the budget and the next larger past it, whatever lies between
    got = largest_within([(1000, 10.0), (2000, 20.0), (4000, 15.0), (8000, 40.0)], budget_ms=16.0)
    assert got["bracket"] == [4000, 8000] and 4000 < got["particles"] < 8000
    assert largest_within([(1000, 20.0), (4000, 80.0)], 16.0) == {
        "particles": None, "how": "below the smallest size measured", "bracket": None}
    assert largest_within([(1000, 2.0), (4000, 8.0)], 16.0) == {
        "particles": None, "how": "above the largest size measured", "bracket": None}


def test_a_small_size_runs_near_its_count_and_reports():
    """The rock hill at 1,200 particles (its own water in particles of 4.2 cm), settled for 3 s at
    most, drawn at 160x90 for a few frames: its count within a factor 2 of the one asked for."""
    result = run_frame_sizes("rock_hill", [1200], frames=3, warmup=2, arch="cpu", resolution=(160, 90), share=0.01,
                             settle_seconds=3.0, steady=ROCK_HILL_STEADY, log=lambda _: None)
    (row,) = result["sizes"]
    assert row["requested"] == 1200 and 600 <= row["particles"] <= 2400
    assert row["particle_radius"] < 0.05 and row["settle_seconds"] <= 3 and len(row["settle_counts"]) >= 1
    assert result["share"] == 0.01 and result["steady_reference"] == ROCK_HILL_STEADY
    assert row["stages"]["total"]["n"] == 3 and row["stages"]["solve"]["median_ms"] > 0
    assert set(result["largest_at_60fps"]) == {"total", "solve"}
    text = table(result)
    assert "largest at 60 fps" in text and "1200" in text
    json.dumps(result)  # the --json file
    assert "frame.total_over_solve" in figures({"frame": result})  # the first row stands for the frame figure
