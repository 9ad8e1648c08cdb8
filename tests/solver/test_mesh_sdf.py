"""The rock SDF: exact against analytic shapes, signs, the cache, and how bad meshes are reported."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh

from waterrock.solver import mesh_sdf
from waterrock.solver.mesh_sdf import (
    MeshError,
    MeshWarning,
    compute_rock_sdf,
    load_rock_mesh,
    rock_sdf,
    rotation_matrix,
)

BOULDER = Path(__file__).resolve().parents[2] / "scenes" / "assets" / "boulder.obj"


def _inside_grid(sdf, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(sdf.origin, sdf.upper, (n, 3))


def test_sphere_sdf_matches_analytic_distance():
    r = 0.3
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=r)  # 5120 faces
    sdf = compute_rock_sdf(mesh, resolution=32, padding=0.1)
    p = _inside_grid(sdf, 2000)
    exact = np.linalg.norm(p, axis=1) - r
    # trilinear interpolation of |x| - r plus the faceting of the icosphere (~1 mm)
    assert np.abs(sdf.sample(p) - exact).max() < 0.3 * sdf.cell_size
    far = np.abs(exact) > sdf.cell_size
    assert np.array_equal(sdf.sample(p[far]) < 0, exact[far] < 0)
    # gradient is the outward radial direction away from the centre
    g = sdf.gradient(p[np.linalg.norm(p, axis=1) > 0.1])
    radial = p[np.linalg.norm(p, axis=1) > 0.1]
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert np.mean((g * radial).sum(axis=1) > 0.98) > 0.97


def test_node_values_are_exact_distances_to_the_triangles():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.25)
    sdf = compute_rock_sdf(mesh, resolution=16, padding=0.05)
    idx = np.stack(np.meshgrid(*map(np.arange, sdf.shape), indexing="ij"), -1).reshape(-1, 3)
    nodes = sdf.origin.astype(np.float64) + sdf.cell_size * idx
    _, dist, _ = trimesh.proximity.closest_point_naive(mesh, nodes)
    assert np.abs(np.abs(sdf.values.reshape(-1)) - dist).max() < 1e-5


def test_box_sdf():
    half = np.array([0.3, 0.1, 0.2])
    mesh = trimesh.creation.box(extents=2 * half)
    sdf = compute_rock_sdf(mesh, resolution=40, padding=0.1)

    def exact(p):
        q = np.abs(p) - half
        return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)

    idx = np.stack(np.meshgrid(*map(np.arange, sdf.shape), indexing="ij"), -1).reshape(-1, 3)
    nodes = sdf.origin.astype(np.float64) + sdf.cell_size * idx
    assert np.abs(sdf.values.reshape(-1) - exact(nodes)).max() < 1e-5  # exact, signs included
    p = _inside_grid(sdf, 3000, seed=1)
    # between nodes, trilinear interpolation cuts the corners of the kinks at edges and the medial axis
    assert np.abs(sdf.sample(p) - exact(p)).max() < 0.5 * sdf.cell_size
    assert sdf.sample(np.zeros((1, 3)))[0] == pytest.approx(-0.1, abs=1e-6)


def test_grid_covers_bounds_plus_padding():
    mesh = trimesh.creation.box(extents=(1.0, 0.5, 0.25))
    sdf = compute_rock_sdf(mesh, resolution=20, padding=0.1)
    assert sdf.cell_size == pytest.approx(1.2 / 20)
    assert sdf.shape[0] == 21
    assert np.all(sdf.origin <= mesh.bounds[0] - 0.1 + 1e-6)
    assert np.all(sdf.upper >= mesh.bounds[1] + 0.1 - 1e-6)
    assert sdf.values.dtype == np.float32 and sdf.origin.dtype == np.float32


def test_transform_is_scale_then_rotate_xyz_then_translate(tmp_path):
    # A tiny tetrahedron whose first vertex sits at (1, 0, 0).
    vertices = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    mesh = trimesh.Trimesh(vertices, [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    path = tmp_path / "tet.obj"
    mesh.export(path)
    placed = load_rock_mesh(path, translate=(5, 0, 0), rotate_deg=(90, 90, 0), scale=2.0)
    # (1,0,0) *2 -> (2,0,0); about x: unchanged; about y by 90: (0,0,-2); translate: (5,0,-2)
    # (0,1,0) *2 -> (0,2,0); about x by 90: (0,0,2); about y by 90: (2,0,0); translate: (7,0,0)
    assert np.any(np.all(np.isclose(placed.vertices, [5, 0, -2], atol=1e-9), axis=1))
    assert np.any(np.all(np.isclose(placed.vertices, [7, 0, 0], atol=1e-9), axis=1))
    np.testing.assert_allclose(rotation_matrix((0, 0, 90)) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_cache_is_hit_and_invalidated(tmp_path, monkeypatch):
    calls = []
    real = mesh_sdf.compute_rock_sdf
    monkeypatch.setattr(mesh_sdf, "compute_rock_sdf", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp_path / "ball.stl"
    trimesh.creation.icosphere(subdivisions=2, radius=0.2).export(path)
    a = rock_sdf(path, resolution=16, padding=0.05, cache_dir=tmp_path / "cache")
    b = rock_sdf(path, resolution=16, padding=0.05, cache_dir=tmp_path / "cache")
    assert len(calls) == 1
    np.testing.assert_array_equal(a.values, b.values)
    assert b.cell_size == a.cell_size and np.array_equal(a.origin, b.origin)
    rock_sdf(path, translate=(0.1, 0, 0), resolution=16, padding=0.05, cache_dir=tmp_path / "cache")
    assert len(calls) == 2
    # the environment variable picks the default folder
    monkeypatch.setenv("WATERROCK_CACHE_DIR", str(tmp_path / "env"))
    rock_sdf(path, resolution=16, padding=0.05)
    assert len(list((tmp_path / "env").glob("*.npz"))) == 1


def test_corrupt_cache_is_recomputed(tmp_path):
    path = tmp_path / "ball.obj"
    trimesh.creation.icosphere(subdivisions=1, radius=0.2).export(path)
    good = rock_sdf(path, resolution=12, padding=0.05, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"not a zip file")
    with pytest.warns(MeshWarning, match="unreadable SDF cache"):
        again = rock_sdf(path, resolution=12, padding=0.05, cache_dir=tmp_path)
    np.testing.assert_array_equal(good.values, again.values)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        load_rock_mesh(tmp_path / "nope.obj")
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        rock_sdf(tmp_path / "nope.obj", cache_dir=tmp_path)


@pytest.mark.parametrize("name, content", [
    ("garbage.obj", bytes(range(256)) * 8),
    ("empty.obj", b""),
    ("comments.obj", b"# nothing here\n"),
    ("truncated.stl", None),
], ids=["garbage", "empty", "no-faces", "truncated-stl"])
def test_unreadable_meshes_raise_mesh_error(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        trimesh.creation.icosphere(subdivisions=2).export(tmp_path / "whole.stl")
        content = (tmp_path / "whole.stl").read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(MeshError, match=name):
        load_rock_mesh(path)


def test_mesh_with_holes_is_repaired_or_signed_by_winding_number(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    holed = trimesh.Trimesh(sphere.vertices, np.delete(sphere.faces, [0, 100, 200, 300], axis=0))
    path = tmp_path / "holed.ply"
    holed.export(path)
    with pytest.warns(MeshWarning, match="holed.ply.*repaired"):
        mesh = load_rock_mesh(path)
    sdf = compute_rock_sdf(mesh, resolution=24, padding=0.05)
    p = _inside_grid(sdf, 2000)
    exact = np.linalg.norm(p, axis=1) - 0.3
    far = np.abs(exact) > sdf.cell_size
    assert np.array_equal(sdf.sample(p[far]) < 0, exact[far] < 0)


def test_big_hole_is_inferred_from_winding_numbers(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    cap = np.flatnonzero(sphere.triangles_center[:, 1] > 0.28)  # a hole trimesh cannot fill
    path = tmp_path / "capless.obj"
    trimesh.Trimesh(sphere.vertices, np.delete(sphere.faces, cap, axis=0)).export(path)
    with pytest.warns(MeshWarning, match="winding numbers"):
        mesh = load_rock_mesh(path)
    sdf = compute_rock_sdf(mesh, resolution=20, padding=0.05)
    assert sdf.sample(np.zeros((1, 3)))[0] < -0.2
    assert sdf.sample(np.array([[0.0, -0.4, 0.0]]))[0] > 0


def test_open_sheet_is_a_mesh_error(tmp_path):
    path = tmp_path / "sheet.obj"
    x, z = np.meshgrid(np.linspace(0, 1, 8), np.linspace(0, 1, 8))
    vertices = np.c_[x.ravel(), np.zeros(64), z.ravel()]
    faces = [[i * 8 + j, i * 8 + j + 1, (i + 1) * 8 + j] for i in range(7) for j in range(7)]
    faces += [[i * 8 + j + 1, (i + 1) * 8 + j + 1, (i + 1) * 8 + j] for i in range(7) for j in range(7)]
    trimesh.Trimesh(vertices, faces).export(path)
    with pytest.raises(MeshError, match="sheet.obj"):
        load_rock_mesh(path)


def test_glb_scene_is_flattened(tmp_path):
    scene = trimesh.Scene([trimesh.creation.box(extents=(0.2, 0.2, 0.2)),
                           trimesh.creation.icosphere(radius=0.1).apply_translation((1, 0, 0))])
    path = tmp_path / "two.glb"
    scene.export(path)
    mesh = load_rock_mesh(path)
    assert mesh.is_watertight and mesh.body_count == 2
    sdf = compute_rock_sdf(mesh, resolution=24, padding=0.05)
    box_centre, ball_centre, between = sdf.sample(np.array([[0.0, 0, 0], [1.0, 0, 0], [0.5, 0, 0]]))
    assert box_centre < -0.05 and ball_centre < -0.05  # both bodies are solid
    assert between == pytest.approx(0.4, abs=0.3 * sdf.cell_size)


def test_shipped_boulder():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # it must load without repair
        mesh = load_rock_mesh(BOULDER)
    assert mesh.is_watertight and mesh.volume > 0
    assert 2000 <= len(mesh.faces) <= 10000
    lo, hi = mesh.bounds
    assert lo[1] == pytest.approx(0.0, abs=1e-4) and 0.4 < hi[1] < 0.6
    assert 0.8 < hi[0] - lo[0] < 1.0
    sdf = compute_rock_sdf(mesh, resolution=24, padding=0.05)
    assert sdf.sample(np.array([[0.0, 0.2, 0.0]]))[0] < -0.1
