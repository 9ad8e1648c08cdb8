"""waterrock: real-time water installations. Water over a rock, visitors as rocks, lines as water.

The public API for scripts:

    import waterrock
    scene = waterrock.load_scene("default")      # or a path to a scene TOML
    solver = waterrock.Solver(scene, arch=None)  # cuda > vulkan > metal > cpu
    solver.step(1 / 60)
    snap = solver.snapshot()
"""

__version__ = "0.1.0"
__all__ = ["load_scene", "Solver", "ObstacleSnapshot", "ParticleSnapshot", "Scene", "SceneError"]


def __getattr__(name: str):
    # imported lazily: `import waterrock` stays light, Taichi starts only with a Solver
    if name in ("load_scene", "Scene", "SceneError"):
        from waterrock import scene

        return getattr(scene, name)
    if name in ("ObstacleSnapshot", "ParticleSnapshot"):
        from waterrock import snapshots

        return getattr(snapshots, name)
    if name == "Solver":
        from waterrock.solver.solver import Solver

        return Solver
    raise AttributeError(f"module 'waterrock' has no attribute {name!r}")
