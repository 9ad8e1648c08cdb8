"""Render the README's stills, docs/images/<scene>.png, from the shipped scenes as they run.

Each scene runs headless for a few simulated seconds at its own frame rate, its synthetic
visitors stepped with the water's clock (as ``waterrock render`` runs them), every frame handed
to the renderer so the trails are the ones a projector shows; the last frame is saved. Run
``python tools/readme_stills.py [scene ...]`` from the repository root after a change to a
scene, the solver or the look, so the pictures stay true.
"""

from __future__ import annotations

import argparse
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
STILLS = {"default": 6.0, "rock_hill": 8.0}  # scene: simulated seconds before the still


def run_water(scene, view, seconds: float) -> None:
    """Run ``scene``'s water ``seconds`` of its own time, its visitors stepped with the water's
    clock (as ``waterrock render`` runs them), every frame handed to ``view`` (an OffscreenView),
    so its trails are the ones a projector shows."""
    from waterrock.app.session import Inputs
    from waterrock.solver.solver import Solver

    solver = Solver(scene)
    inputs = Inputs(scene, solver, stepped=True)
    try:
        for _ in range(round(seconds * scene.solver.frame_rate)):
            solver.set_obstacles(inputs.obstacles.latest())
            solver.step()
            view.update(solver.snapshot())
    finally:
        inputs.close()


def still(name: str, seconds: float, size: tuple[int, int], out: Path) -> Path:
    from waterrock.app.session import OffscreenView, save_png
    from waterrock.scene import load_scene

    scene = load_scene(name)
    view = OffscreenView(scene, size=size)
    try:
        run_water(scene, view, seconds)
        view.render()
        return save_png(view.read_pixels(), out / f"{name}.png")
    finally:
        view.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", default=list(STILLS), help=f"(default: {' '.join(STILLS)})")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from waterrock.backend import init_backend

    init_backend()
    for name in args.scenes:
        print(still(name, STILLS.get(name, 6.0), tuple(args.size), args.out))


if __name__ == "__main__":
    main()
