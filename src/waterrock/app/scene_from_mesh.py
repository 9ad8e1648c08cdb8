"""``waterrock scene --from-mesh``: a starting scene around an operator's own rock.

A scan or a model of a rock comes in whatever units and axes its tool wrote: a photogrammetry
scan in metres with Z up, a CAD or 3D-printing file in millimetres, a glTF in metres with Y up
(its specification's). A scene needs metres and Y up (DESIGN.md), a domain around the rock,
water poured onto its top and a view that frames it. So the mesh is read once, through
``mesh_sdf.load_rock_mesh`` (which names a broken file and repairs a leaky one), its units and
up axis are read from the file or guessed from its shape (or taken from the operator), a huge
mesh is decimated so that its signed-distance volume builds in seconds, and a scene is written
whose comments say where each number came from. The scene is validated before it is written,
loaded again after, and its rock's volume built (which warms the cache for the first run)
before success is reported.
"""

from __future__ import annotations

import math
import os
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomlkit
import trimesh

from waterrock import files
from waterrock.render.projection import view_basis
from waterrock.render.settings import RenderSettings
from waterrock.scene import SceneError, load_scene, parse_scene
from waterrock.solver.mesh_sdf import MeshError, MeshWarning, load_rock_mesh, rotation_matrix, scene_rock_sdf

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
# Faces kept for the rock's SDF. Its build at resolution 64 took, in CPU seconds on a 2-core machine,
# 0.9 at 5k faces (mostly the grid's nodes), 2.4 at 50k, 3.4 at 100k, 7.1 at 400k and 12.9 at 1.3M;
# decimating 1.3M faces to 100k took 10 s (26 s on a busy machine), once (docs/operator.md, "Your own rock")
DEFAULT_MAX_FACES = 100_000
MIN_FACES = 1000  # below this a rock loses its ledges to the decimation before it gains any speed
# A rock longer than this in its file's units is not in metres: a 50 m rock is a hill, and a
# scan in millimetres or centimetres of anything a visitor can stand on is longer
METRES_AT_MOST = 50.0
CENTIMETRES_AT_MOST = 500.0  # 50-500 units: 0.5-5 m in cm; longer: 0.5 m or more in mm
BASE_SHARE = 0.05  # of the surface facing straight down: a base (the boulder's is 18 %, its sides' under 3 %)
FLATTER = 0.8  # an axis this much shorter than the other is the rock's height: rocks are lower than wide
BUDGET = 15_000  # particles, about default.toml's 12,000: coarse enough for a 2-core CPU
SPACINGS_ALONG = 37.5  # particle spacings along the rock's longest side (default.toml's 0.9 m boulder, r 12 mm)
# ... up to the rock hill's particles (scenes/rock_hill.toml, 8 m, r 30 mm): coarser, a room-scale rock's
# sheets of water read as a few blobs (at 37.5 along 8 m, r 110 mm)
MAX_RADIUS = 0.03
# m/s poured: faster, onto a rock people stand on, the water splashes across the picture (the rock hill
# pours at 1.5 m/s; the Froude scaling below gave 3.5 m/s for 8 m)
MAX_SPEED = 2.0
SDF_CELLS_PER_SPACING = 1.5  # the rock's distance volume no coarser than this many particle spacings a cell
# The emitters bring the whole budget in this time, about default.toml's 2,900 particles a second; water
# held longer (pooled in hollows) starves them, counted, until a sink retires some
RESIDENCE_S = 5.0
ELEVATION_DEG = 30.0  # the view from above and in front, as projectors on a truss see a rock


class SceneFromMeshError(ValueError):
    """Bad input to ``waterrock scene``: the message is one line naming the problem."""


@dataclass
class Placement:
    """How the file's mesh becomes the scene's rock, and why."""

    unit: str  # one of UNITS, or a unit the file names that is none of them ("feet")
    to_metres: float
    units_why: str
    up: str  # "y" or "z"
    up_why: str

    @property
    def rotate_deg(self) -> tuple[float, float, float]:
        """Z up to Y up is a quarter turn about x (y' = z, z' = -y), which keeps the mesh's handedness."""
        return (-90.0, 0.0, 0.0) if self.up == "z" else (0.0, 0.0, 0.0)

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """The file's vertices in metres, Y up, as the scene's scale and rotate_deg place them."""
        return vertices @ (rotation_matrix(self.rotate_deg) * self.to_metres).T


@dataclass
class Result:
    scene: Path
    mesh: Path  # the mesh the scene names: the operator's, or its decimated copy
    lines: list[str] = field(default_factory=list)  # what the command prints


def _sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant figures: numbers an operator reads and edits."""
    return float(f"{x:.{digits}g}") if x != 0 else 0.0


def _vec(v) -> list[float]:
    """Metres to 4 significant figures, and to the micrometre (no 1e-24 left by a rotation)."""
    return [_sig(round(float(x), 6)) for x in v]


def _size(v, unit: str = "") -> str:
    return " x ".join(f"{x:.4g}" for x in v) + (f" {unit}" if unit else "")


def detect_units(mesh: trimesh.Trimesh, asked: str) -> tuple[str, float, str]:
    """The file's unit, metres per unit, and why: ``asked`` unless "auto", else the file's own
    (glTF is in metres by its specification; trimesh reads it), else a guess from the size."""
    if asked != "auto":
        return asked, UNITS[asked], "as --units says"
    if mesh.units:
        try:
            to_metres = trimesh.units.unit_conversion(mesh.units, "meters")
        except (ValueError, KeyError):
            pass  # a unit trimesh does not know: guessed below like a file without one
        else:
            short = [u for u, m in UNITS.items() if math.isclose(m, to_metres)]
            return (short[0] if short else mesh.units), to_metres, f"from the file ({mesh.units})"
    longest = float(np.ptp(mesh.bounds, axis=0).max())
    unit = "m" if longest <= METRES_AT_MOST else "cm" if longest <= CENTIMETRES_AT_MOST else "mm"
    names = {"m": "metres", "cm": "centimetres", "mm": "millimetres"}
    others = ", ".join(f"{longest * UNITS[u]:.4g} m if in {names[u]}" for u in names if u != unit)
    return unit, UNITS[unit], f"guessed from the size: its longest side is {longest:.4g} ({others})"


def detect_up(mesh: trimesh.Trimesh, path: Path, asked: str) -> tuple[str, str]:
    """The file's up axis, y or z, and why: ``asked`` unless "auto"; glTF is Y up by its
    specification; else the axis a flat base faces down along (a rock cut flat where it stands,
    or a scan whose open bottom was filled); else the shorter of y and z (a rock is lower than it
    is wide); else y, the convention."""
    if asked != "auto":
        return asked, "as --up says"
    if path.suffix.lower() in (".glb", ".gltf"):
        return "y", "glTF is Y up by its specification"
    base = {a: _flat_base(mesh, i) for i, a in ((1, "y"), (2, "z"))}
    (up, share), (_, other) = sorted(base.items(), key=lambda kv: -kv[1])
    if share >= BASE_SHARE and share >= 2.0 * max(other, 0.0):
        return up, f"a flat base faces -{up} ({share:.0%} of the surface, and nothing as flat faces +{up})"
    ext = np.ptp(mesh.bounds, axis=0)
    if ext[2] < FLATTER * ext[1]:
        return "z", f"the mesh is flatter in z ({ext[2]:.4g}) than in y ({ext[1]:.4g})"
    if ext[1] < FLATTER * ext[2]:
        return "y", f"the mesh is flatter in y ({ext[1]:.4g}) than in z ({ext[2]:.4g})"
    return "y", "y and z are about as long and neither has a flat base: y, the convention"


def _flat_base(mesh: trimesh.Trimesh, axis: int) -> float:
    """The share of the surface facing straight down along ``axis`` (within 10 degrees), less the
    share facing straight up: a base where the rock stands, not two parallel flat sides."""
    n, cone = mesh.face_normals[:, axis], math.cos(math.radians(10.0))
    return float((mesh.area_faces[n < -cone].sum() - mesh.area_faces[n > cone].sum()) / mesh.area)


def decimate(mesh: trimesh.Trimesh, max_faces: int) -> tuple[trimesh.Trimesh | None, str]:
    """The mesh with at most ``max_faces`` faces, or None, and what happened.

    libigl's edge-collapse decimation (already a dependency, for the SDF): it collapses the
    shortest edge first and refuses a collapse that would change the topology, so a closed rock
    stays closed. trimesh's quadric decimation needs a package of its own (fast_simplification),
    and it left ten edges shared by three faces in the subdivided boulder. libigl gives up on a
    mesh whose edges are already shared by more than two faces: the full mesh is kept, and the
    build is slower."""
    import igl

    t = time.perf_counter()
    v = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    f = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    vertices, faces, _, _ = igl.decimate(v, f, int(max_faces))
    if len(faces) == 0 or len(faces) > max_faces:
        return None, (f"cannot decimate it (libigl refuses meshes with edges shared by more than two faces): "
                      f"keeping all {len(mesh.faces):,} faces, so the rock's SDF takes longer to build")
    small = trimesh.Trimesh(vertices, faces, process=True)
    return small, f"decimated from {len(mesh.faces):,} to {len(small.faces):,} faces in {time.perf_counter() - t:.1f} s"


def _tops(vertices: np.ndarray, n: int, inset: float) -> list[np.ndarray]:
    """Where to pour onto each of ``n`` equal parts of the rock along its longer horizontal side:
    above the middle of the part's top (its vertices in the highest sixth of its height), moved
    in from the rock's outline by ``inset`` so that an opening there pours onto the rock, not
    beside it (the highest vertex alone is often an edge or a corner)."""
    axis = 0 if np.ptp(vertices[:, 0]) >= np.ptp(vertices[:, 2]) else 2
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    part = np.minimum(((vertices[:, axis] - lo[axis]) / max(hi[axis] - lo[axis], 1e-12) * n).astype(int), n - 1)
    tops = []
    for k in range(n):
        v = vertices[part == k]
        if len(v):
            top = v[v[:, 1] >= v[:, 1].max() - (hi[1] - lo[1]) / 6.0].mean(axis=0)
            tops.append(np.clip(top, np.minimum(lo + inset, (lo + hi) / 2), np.maximum(hi - inset, (lo + hi) / 2)))
    return tops


def _frame(points: np.ndarray, center: np.ndarray, aspect: float) -> float:
    """The projection's height (metres over the picture's height) that shows ``points`` around
    ``center`` from ELEVATION_DEG, with a quarter to spare for the water running off and splashing."""
    right, up, _ = view_basis(0.0, ELEVATION_DEG)
    d = points - center
    return 2.5 * max(float(np.abs(d @ up).max()), float(np.abs(d @ right).max()) / aspect)


def build_scene(mesh: trimesh.Trimesh, place: Placement, mesh_ref: str, source: Path, faces_note: str) -> str:
    """The scene's TOML text for the rock ``mesh`` (file units and axes) placed by ``place``."""
    v = place.apply(mesh.vertices)
    lo, hi = v.min(axis=0), v.max(axis=0)
    translate = -np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])  # centred, resting on y = 0
    v = v + translate
    lo, hi = lo + translate, hi + translate
    ext = hi - lo
    longest = float(ext.max())
    radius = min(_sig(longest / (2.0 * SPACINGS_ALONG), 2), MAX_RADIUS)
    spacing, support = 2.0 * radius, 4.0 * radius
    sdf_resolution = int(np.clip(math.ceil(longest / (SDF_CELLS_PER_SPACING * spacing)), 64, 128))

    # Water: an opening fills at rest density, speed * area / spacing^3 particles a second
    # (solver/sources.py); the openings share BUDGET / RESIDENCE_S of them. The speed grows with
    # the rock as a Froude number does, 1.2 m/s over the 0.9 m boulder.
    speed = _sig(min(max(0.4 * math.sqrt(9.81 * longest), 0.5), MAX_SPEED), 2)
    horizontal = sorted((ext[0], ext[2]))
    n_emitters = 2 if horizontal[1] >= 1.5 * horizontal[0] else 1
    flow = BUDGET / RESIDENCE_S / n_emitters
    opening = _sig(max(math.sqrt(flow * spacing**3 / speed / math.pi), 1.5 * spacing), 2)
    clearance = max(0.3 * ext[1], 10.0 * spacing)
    pour_y = hi[1] + clearance
    margin = max(0.35 * max(ext[0], ext[2]), opening + support)
    d_lo = np.array([lo[0] - margin, 0.0, lo[2] - margin])
    d_hi = np.array([hi[0] + margin, pour_y + max(4.0 * support, 0.1 * ext[1]), hi[2] + margin])
    pours = [np.array([t[0], pour_y, t[2]]) for t in _tops(v, n_emitters, opening)]

    center = (lo + hi) / 2
    w, h = RenderSettings().resolution
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    view_height = _frame(np.vstack([corners, *pours]), center, w / h)

    doc = tomlkit.document()
    for paragraph in (
        f"A starting scene for the rock in {source.name}, written by `waterrock scene --from-mesh`.",
        f"Units: {place.unit}, {place.units_why}.",
        f"Up: {place.up}, {place.up_why}.",
        f"Placed, the rock is {_size(ext, 'm')} (x, y up, z), centred on x = z = 0 and resting on the floor, y = 0.",
        "Tune next: the emitters (where the water falls), fluid.max_particles and particle_radius (a GPU runs "
        "far more, finer), and [render.projection] (the view).",
    ):
        for line in textwrap.wrap(paragraph, 98, subsequent_indent="  "):
            doc.add(tomlkit.comment(line))
    doc.add("name", source.stem)
    doc.add("description", f"Water poured over the rock in {source.name}")

    domain = _table(doc, "domain", f"the rock's bounds, {margin:.3g} m beside it, and room above the emitters")
    _add(domain, "lower", _vec(d_lo))
    _add(domain, "upper", _vec(d_hi))

    rock = _table(doc, "rock")
    _add(rock, "mesh", mesh_ref, faces_note)
    _add(rock, "scale", _sig(place.to_metres, 6), f"{place.unit} to metres (the units above)")
    _add(rock, "rotate_deg", list(place.rotate_deg), "Z up to Y up" if place.up == "z" else "Y up already")
    _add(rock, "translate", _vec(translate), "centred on x = z = 0, its lowest point on the floor")
    _add(rock, "sdf_resolution", sdf_resolution,
         f"cells of {longest / sdf_resolution * 1000:.3g} mm along its longest side")

    fluid = _table(doc, "fluid")
    _add(fluid, "particle_radius", radius,
         f"{SPACINGS_ALONG:g} particles along its longest side, {longest:.3g} m" if radius < MAX_RADIUS else
         f"the rock hill's (scenes/rock_hill.toml): {longest / (2 * radius):.0f} particles along its {longest:.3g} m")
    _add(fluid, "viscosity", 0.02)
    _add(fluid, "wall_friction", 20.0)
    _add(fluid, "max_particles", BUDGET, "coarse enough for a 2-core CPU; raise it on a GPU")

    emitters = tomlkit.aot()
    for p in pours:
        e = tomlkit.table()
        _add(e, "shape", "disk")
        _add(e, "center", _vec(p), f"{clearance:.3g} m above the middle of the rock's top"
             + (" in this half of its length" if n_emitters > 1 else ""))
        _add(e, "direction", [0.0, -1.0, 0.0])
        _add(e, "radius", opening, f"at this speed about {flow:,.0f} particles/s: the budget in {RESIDENCE_S:g} s"
             + (f" from {n_emitters} emitters" if n_emitters > 1 else ""))
        _add(e, "speed", speed, "m/s, growing with the rock's size as a Froude number does"
             + (f", at most {MAX_SPEED:g}" if speed >= MAX_SPEED else ""))
        emitters.append(e)
    doc.add("emitters", emitters)

    sink = tomlkit.table()
    _add(sink, "lower", _vec([d_lo[0] - longest, -longest, d_lo[2] - longest]))
    _add(sink, "upper", _vec([d_hi[0] + longest, 2.5 * radius, d_hi[2] + longest]),
         "the floor: water that reaches it drains away and is poured again")
    sinks = tomlkit.aot()
    sinks.append(sink)
    doc.add("sinks", sinks)

    tracking = _table(doc, "tracking", "visitors come once a camera is set (docs/tracking.md)")
    _add(tracking, "source", "none", "'synthetic': the scripted visitors, walking where default.toml's rock is")

    solver = _table(doc, "solver", "default.toml's real-time settings")
    for key, value in (("method", "pbf"), ("frame_rate", 60.0), ("substeps", 2), ("max_substeps", 3),
                       ("cfl", 0.6), ("pbf_iterations", 3)):
        _add(solver, key, value)

    render = tomlkit.table(is_super_table=True)
    projection = _table(render, "projection", "parallel, from above and in front, framing the rock and emitters")
    _add(projection, "center", _vec(center), "the rock's centre")
    _add(projection, "height", _sig(view_height, 3), "metres shown over the picture's height")
    _add(projection, "elevation_deg", ELEVATION_DEG)
    _add(projection, "azimuth_deg", 0.0, "from +z; turn it to face the rock's best side")
    contours = _table(render, "rock")
    _add(contours, "contour_spacing", _sig(max(ext[1] / 6.0, 0.01), 2), "m: six iso-height lines up the rock")
    doc.add("render", render)
    return tomlkit.dumps(doc)


def _table(parent, key: str, note: str | None = None):
    """A new ``[key]`` table in ``parent``, its header followed by ``note``."""
    t = tomlkit.table()
    if note:
        t.comment(note)
        t.trivia.comment_ws = "   "
    parent.add(key, t)
    return parent[key]


def _add(table, key: str, value, note: str | None = None) -> None:
    """``key = value  # note``, as default.toml writes a number's reason."""
    table.add(key, value)
    if note:
        table[key].comment(note)
        table[key].trivia.comment_ws = "  "


def scene_from_mesh(mesh_path: str | Path, out: str | Path, units: str = "auto", up: str = "auto",
                    max_faces: int = DEFAULT_MAX_FACES, force: bool = False) -> Result:
    """Write a starting scene for the rock in ``mesh_path`` to ``out`` (see the module's comment).

    Raises SceneFromMeshError for an output in the way or a bad option, and mesh_sdf's
    FileNotFoundError and MeshError for a mesh that cannot be a rock; nothing is written then."""
    mesh_path, out = Path(mesh_path), Path(out)
    if units not in (*UNITS, "auto"):
        raise SceneFromMeshError(f"--units {units!r}: choose one of {', '.join(UNITS)} or auto")
    if max_faces < MIN_FACES:
        raise SceneFromMeshError(f"--max-faces {max_faces}: give {MIN_FACES} or more")
    if out.suffix != ".toml":
        raise SceneFromMeshError(f"--out {out}: a scene is a .toml file")
    if out.exists() and not force:
        raise SceneFromMeshError(f"{out}: exists; pass --force to overwrite it, or name another --out")
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MeshWarning)
        mesh = load_rock_mesh(mesh_path)
    lines += [str(w.message) for w in caught if issubclass(w.category, MeshWarning)]
    unit, to_metres, units_why = detect_units(mesh, units)
    axis, up_why = detect_up(mesh, mesh_path, up)
    place = Placement(unit, to_metres, units_why, axis, up_why)
    lines.append(f"{mesh_path}: {len(mesh.faces):,} faces, {_size(np.ptp(mesh.bounds, axis=0))} in the file's units")
    lines.append(f"units: {unit}, {units_why}; --units to override")
    lines.append(f"up: {axis}, {up_why}; --up to override")

    named, small = mesh_path, None
    faces_note = f"{len(mesh.faces):,} faces"
    if len(mesh.faces) > max_faces:
        copy = out.parent / f"{mesh_path.stem}_decimated.ply"
        if copy.resolve() == mesh_path.resolve():
            raise SceneFromMeshError(f"{copy}: the decimated copy would replace the mesh itself; write the scene "
                                     f"to another folder")
        if copy.exists() and not force:
            raise SceneFromMeshError(f"{copy}: exists; pass --force to overwrite it")
        small, why = decimate(mesh, max_faces)
        lines.append(why)
        if small is not None:
            named, mesh = copy, small
            faces_note = f"{mesh_path.name} {why}; the same units and axes, so either file fits"
        else:
            faces_note += f", more than --max-faces {max_faces:,}, but libigl could not decimate them"
    mesh_ref = Path(os.path.relpath(named.resolve(), out.resolve().parent)).as_posix()
    text = build_scene(mesh, place, mesh_ref, mesh_path, faces_note)
    try:  # never write a scene that would not load: a fault here is this module's, said plainly
        parse_scene(tomllib.loads(text), out)
    except SceneError as err:
        raise SceneFromMeshError(f"the scene made for {mesh_path} does not validate: "
                                 f"{files.one_line(err)}") from None

    out.parent.mkdir(parents=True, exist_ok=True)
    if small is not None:
        files.write_bytes(named, small.export(file_type="ply"))
    files.write_text(out, text)
    t = time.perf_counter()
    try:  # as `waterrock run` will load it; what fails here takes back what was written
        scene = load_scene(out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MeshWarning)  # said above, from the same mesh
            scene_rock_sdf(scene.rock, scene.fluid.support_radius, show_progress=False)
    except (SceneError, MeshError) as err:
        out.unlink(missing_ok=True)
        if small is not None:
            named.unlink(missing_ok=True)
        raise SceneFromMeshError(f"the scene made for {mesh_path} does not load: "
                                 f"{files.one_line(err)}") from None
    lines.append(f"rock: {_size(np.ptp(place.apply(mesh.vertices), axis=0), 'm')} (x, y up, z), particles of radius "
                 f"{scene.fluid.particle_radius * 1000:.3g} mm, budget {scene.fluid.max_particles:,}, "
                 f"{len(scene.emitters)} emitter{'s' if len(scene.emitters) > 1 else ''}")
    lines.append(f"rock SDF built in {time.perf_counter() - t:.1f} s (cached for the first run)")
    lines.append(f"wrote {out}; look at it: waterrock run --scene {out} --seconds 10 --screenshot rock.png")
    return Result(scene=out, mesh=named, lines=lines)
