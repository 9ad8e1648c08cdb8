"""`waterrock scene --from-mesh` (issue 26): an operator's rock in millimetres with Z up becomes a
scene in metres with Y up that loads and runs; a huge rock is decimated; a GLB's node transforms
are kept; bad input is one line, status 2, and nothing written. In-process through the CLI's
``main`` (the subprocess path is test_cli.py's), the water stepped by the Solver itself."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from tests.app.app_helpers import BOULDER
from waterrock.app.cli import main
from waterrock.app.scene_from_mesh import decimate
from waterrock.scene import load_scene
from waterrock.solver.mesh_sdf import load_rock_mesh, rotation_matrix, scene_rock_sdf


@pytest.fixture(autouse=True)
def sdf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WATERROCK_CACHE_DIR", str(tmp_path / "cache"))


def _placed(mesh: trimesh.Trimesh, rotate_deg=(0.0, 0.0, 0.0), scale: float = 1.0) -> trimesh.Trimesh:
    t = np.eye(4)
    t[:3, :3] = rotation_matrix(rotate_deg) * scale
    return mesh.copy().apply_transform(t)


@pytest.fixture(scope="module")
def boulder() -> trimesh.Trimesh:
    return trimesh.load(BOULDER, force="mesh")  # 0.9 x 0.5 x 0.78 m, y up


@pytest.fixture(scope="module")
def rock_mm(boulder, tmp_path_factory):
    """The boulder as a scanner in millimetres with Z up writes it: y becomes z (a quarter turn
    about x), x1000, PLY (no units in the file)."""
    path = tmp_path_factory.mktemp("scan") / "rock_mm.ply"
    _placed(boulder, (90.0, 0.0, 0.0), 1000.0).export(path)
    return path


def _scene(capsys, mesh, out, *more: str):
    assert main(["scene", "--from-mesh", str(mesh), "--out", str(out), *more]) == 0, capsys.readouterr().err
    return load_scene(out), capsys.readouterr().out


def test_a_rock_in_millimetres_z_up_becomes_a_scene_that_runs(rock_mm, boulder, tmp_path, capsys):
    from waterrock.solver.solver import Solver

    scene, said = _scene(capsys, rock_mm, tmp_path / "scenes" / "myrock.toml")
    assert "units: mm, guessed from the size" in said and "up: z, a flat base faces -z" in said, said
    text = (tmp_path / "scenes" / "myrock.toml").read_text()
    assert "# Units: mm, guessed from the size" in text and "Z up to Y up" in text  # the guess is in the scene too
    assert scene.rock.mesh == rock_mm.resolve() and scene.rock.scale == pytest.approx(0.001)

    # in metres, y up: the boulder's own size and height, resting on the floor of the domain
    r = scene.rock
    lo, hi = load_rock_mesh(r.mesh, r.translate, r.rotate_deg, r.scale).bounds
    np.testing.assert_allclose(hi - lo, np.ptp(boulder.bounds, axis=0), rtol=1e-3)
    d_lo, d_hi = np.array(scene.domain.lower), np.array(scene.domain.upper)
    assert lo[1] == pytest.approx(d_lo[1], abs=1e-6)
    assert np.all(lo[[0, 2]] > d_lo[[0, 2]]) and np.all(hi < d_hi)

    # each emitter above the rock's top, its opening within the domain, the rock straight below it
    sdf = scene_rock_sdf(r, scene.fluid.support_radius, show_progress=False)
    for e in scene.emitters:
        c = np.array(e.center)
        assert hi[1] < c[1] < d_hi[1]
        assert np.all(c[[0, 2]] - e.radius > d_lo[[0, 2]]) and np.all(c[[0, 2]] + e.radius < d_hi[[0, 2]])
        below = np.c_[np.full(100, c[0]), np.linspace(c[1], 0.0, 100), np.full(100, c[2])]
        assert sdf.sample(below).min() < 0.0
    assert 10_000 <= scene.fluid.max_particles <= 20_000

    # it runs: water appears, lands on the rock, and none of it is inside the rock
    s = Solver(scene, arch="cpu")
    radius = scene.fluid.particle_radius
    deepest, on_rock = np.inf, 0
    for frame in range(30):  # half a second: the water falls onto the rock and runs down it
        s.step()
        if frame % 10 == 9:
            x = s.snapshot().positions
            assert np.all(np.isfinite(x))
            d = s.boundary.rock_sdf.sample(x)
            deepest, on_rock = min(deepest, float(d.min())), max(on_rock, int(np.sum(d < 2 * radius)))
    assert s.n_active() > 300
    assert on_rock > 100
    assert deepest > -0.5 * radius, f"a particle lies {-deepest * 1e3:.1f} mm inside the rock"


def test_a_huge_rock_is_decimated_beside_the_scene(boulder, tmp_path, capsys):
    fine = tmp_path / "fine.ply"
    boulder.subdivide().export(fine)  # 20,480 faces
    scene, said = _scene(capsys, fine, tmp_path / "out" / "fine.toml", "--max-faces", "5000", "--units", "m")
    copy = tmp_path / "out" / "fine_decimated.ply"
    assert "decimated from 20,480 to" in said and scene.rock.mesh == copy.resolve()
    small = load_rock_mesh(copy)
    assert 4000 <= len(small.faces) <= 5000 and small.is_watertight
    np.testing.assert_allclose(small.bounds, boulder.bounds, atol=0.01)  # the same rock, to a centimetre


def test_a_mesh_libigl_cannot_decimate_is_kept_whole():
    """Two cubes sharing an edge: four faces meet there, and libigl's decimation refuses it."""
    cube = trimesh.creation.box(extents=[1.0, 1.0, 1.0]).subdivide_to_size(0.1)
    twins = trimesh.util.concatenate([cube, cube.copy().apply_translation([1.0, 1.0, 0.0])])
    twins.merge_vertices()
    small, why = decimate(twins, 1000)
    assert small is None and "cannot decimate" in why and f"{len(twins.faces):,} faces" in why


def test_a_glb_keeps_its_node_transforms_and_metres(boulder, tmp_path, capsys):
    glb = tmp_path / "rock.glb"
    world = trimesh.Scene()
    world.add_geometry(boulder, node_name="rock", transform=trimesh.transformations.compose_matrix(
        scale=[2.0, 2.0, 2.0], translate=[5.0, 1.0, 0.0]))
    world.export(glb)
    scene, said = _scene(capsys, glb, tmp_path / "glb.toml")
    assert "units: m, from the file" in said and "up: y, glTF is Y up" in said, said
    r = scene.rock
    lo, hi = load_rock_mesh(r.mesh, r.translate, r.rotate_deg, r.scale).bounds
    np.testing.assert_allclose(hi - lo, 2.0 * np.ptp(boulder.bounds, axis=0), rtol=1e-3)
    assert lo[1] == pytest.approx(0.0, abs=1e-6)


def _bad_mesh(path, kind: str) -> None:
    if kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "empty":
        path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")  # vertices, no faces
    elif kind == "nan":
        ball = trimesh.creation.icosphere(subdivisions=2, radius=0.2)
        v = ball.vertices.copy()
        v[7] = [np.nan, 0.0, np.inf]
        trimesh.Trimesh(v, ball.faces, process=False).export(path)


@pytest.mark.parametrize("kind, name, reason", [
    ("missing", "gone.glb", "not found"),
    ("garbage", "garbage.ply", "cannot read"),
    ("empty", "empty.obj", "no triangles"),
    ("nan", "nan.obj", "not finite"),
])
def test_bad_input_is_one_line_status_2_and_nothing_written(tmp_path, capsys, kind, name, reason):
    mesh = tmp_path / name
    _bad_mesh(mesh, kind)
    out = tmp_path / "out" / "rock.toml"
    assert main(["scene", "--from-mesh", str(mesh), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("waterrock: error:"), err
    assert name in err and reason in err, err
    assert not (tmp_path / "out").exists()


def test_an_existing_scene_is_kept_without_force(rock_mm, tmp_path, capsys):
    out = tmp_path / "rock.toml"
    out.write_text("# the operator's own\n")
    assert main(["scene", "--from-mesh", str(rock_mm), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists" in err and "--force" in err and len(err.splitlines()) == 1, err
    assert out.read_text() == "# the operator's own\n"


def test_a_room_scale_rock_keeps_fine_water_poured_gently(boulder, tmp_path, capsys):
    """A rock people stand on (the boulder at 8 m, in metres): particles no coarser than the rock
    hill's 30 mm, water poured at no more than 2 m/s, the distance volume's cells at most 1.5
    particle spacings (a seventy-fifth of 8 m would be 110 mm particles poured at 3.5 m/s)."""
    path = tmp_path / "hill.obj"
    _placed(boulder, scale=8.0 / 0.9).export(path)
    scene, _ = _scene(capsys, path, tmp_path / "hill.toml")
    assert scene.fluid.particle_radius == 0.03
    assert all(e.speed <= 2.0 for e in scene.emitters)
    assert 8.0 / scene.rock.sdf_resolution <= 1.5 * scene.fluid.spacing + 1e-9 and scene.rock.sdf_resolution <= 128
