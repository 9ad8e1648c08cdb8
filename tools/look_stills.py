"""Render the pictures of the shipped looks, docs/images/look_<name>.png, from a scene as it runs.

The scene (the default one unless named) runs headless for a few simulated seconds, its synthetic
visitors stepped with the water's clock (as tools/readme_stills.py runs them), every frame handed
to one renderer; its last frame is then drawn once in each look: the scene's ``[render]`` section
as its file writes it, with ``[render.look] preset`` set to the look's name (the scene's own keys
still override the preset's, as they would in the file). One run, one water: the pictures differ
only in their look. Run ``python tools/look_stills.py [--look NAME ...] [--scene NAME]`` from the
repository root after a change to a look, the line shader or the scene.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from readme_stills import run_water  # tools/, beside this script

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def look_settings(scene, preset: str):
    """``scene``'s render settings as its file writes them, with the look ``preset``."""
    from waterrock.render.settings import RenderSettings
    from waterrock.scene import read_scene_text

    render = read_scene_text(scene.path).get("render", {})
    return RenderSettings.model_validate({**render, "look": {**render.get("look", {}), "preset": preset}})


def stills(scene_name: str, looks: list[str], seconds: float, size: tuple[int, int], out: Path) -> list[Path]:
    from waterrock.app.session import OffscreenView, save_png
    from waterrock.scene import load_scene

    scene = load_scene(scene_name)
    view = OffscreenView(scene.model_copy(update={"render": look_settings(scene, looks[0])}), size=size)
    written = []
    try:
        run_water(scene, view, seconds)
        for name in looks:
            view.renderer.set_look(look_settings(scene, name))
            view.render()
            written.append(save_png(view.read_pixels(), out / f"look_{name.replace(' ', '_')}.png"))
    finally:
        view.release()
    return written


def main() -> None:
    from typing import get_args

    from waterrock.render.settings import LookName

    names = list(get_args(LookName))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--look", action="append", choices=names, help=f"(default: all of {', '.join(names)})")
    parser.add_argument("--scene", default="default")
    parser.add_argument("--seconds", type=float, default=6.0, help="simulated seconds before the still")
    parser.add_argument("--size", type=int, nargs=2, default=(960, 540), metavar=("W", "H"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from waterrock.backend import init_backend

    init_backend()
    for path in stills(args.scene, args.look or names, args.seconds, tuple(args.size), args.out):
        print(path)


if __name__ == "__main__":
    main()
