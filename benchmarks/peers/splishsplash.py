"""SPlisHSPlasH (pysplishsplash 2.19) on the benchmark's dam break: WCSPH or DFSPH.

The scene is written as SPlisHSPlasH scene JSON: the same particle radius, time step (CFL off),
gravity, rest density and tank; the fluid block widened by one particle radius on each side
because SPlisHSPlasH samples a block from one spacing inside its corners, which then gives the
very lattice waterrock starts from (same count, same positions). Boundary: Koschier & Bender
2017 density maps (boundaryHandlingMethod 1), the model waterrock's boundary follows; map cells
one support radius wide, as in SPlisHSPlasH's DamBreakModel scene. WCSPH's stiffness and exponent
are nested under "WCSPH" (at the top level they are ignored and a stiffness of 50 is used
without a word); DFSPH's tolerances are maxError and maxErrorV in percent (both the mean
relative density error, maxErrorV's per step, as waterrock's). Viscosity: SPlisHSPlasH's standard
viscosity with the benchmark's coefficient.

Timing: the simulator's own loop (SimulatorBase.run, no GUI) with a time-step callback; the
clock runs from the end of the first step (which includes the first neighbour search and
sorting) to the end of the last, so the first step is the warm-up. The density map is built
once and cached beside the scene file, in ~/.cache/waterrock/splishsplash (SPlisHSPlasH keys it on
the radius, the tank and the map's resolution).

Run with the system's libGLdispatch.so.0 preloaded where libGLX loads first, or the wheel's
import segfaults; waterrock.bench.peers does that.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
from protocol import parse_args, write_result

METHOD_ENUM = {"wcsph": 0, "dfsph": 4}  # SPlisHSPlasH's simulationMethod
BOX_OBJ = """# a unit cube centred at the origin, outward normals (the tank, inverted by mapInvert)
v -0.5 -0.5 0.5
v 0.5 -0.5 0.5
v -0.5 0.5 0.5
v 0.5 0.5 0.5
v -0.5 0.5 -0.5
v 0.5 0.5 -0.5
v -0.5 -0.5 -0.5
v 0.5 -0.5 -0.5
f 1 2 3
f 3 2 4
f 3 4 5
f 5 4 6
f 5 6 7
f 7 6 8
f 7 8 1
f 1 8 2
f 2 8 4
f 4 8 6
f 7 1 5
f 5 1 3
"""


def scene_json(case: dict, box_path: str) -> dict:
    r, h = case["radius"], 4.0 * case["radius"]
    lower, upper = np.asarray(case["lower"]), np.asarray(case["upper"])
    size = upper - lower
    lo, hi = np.asarray(case["block"][0]) - r, np.asarray(case["block"][1]) + r
    return {
        "Configuration": {
            "particleRadius": r, "numberOfStepsPerRenderUpdate": 1,
            "simulationMethod": METHOD_ENUM[case["method"]], "gravitation": [0.0, -9.81, 0.0],
            "timeStepSize": case["time_step"], "cflMethod": 0, "boundaryHandlingMethod": 1,
            "stopAt": case["steps"] * case["time_step"],
            "WCSPH": {"stiffness": case["stiffness"], "exponent": case["exponent"]},
            "DFSPH": {"minIterations": 2, "maxIterations": 100, "maxError": 100.0 * case["tolerance"],
                      "maxIterationsV": 100, "maxErrorV": 100.0 * case["divergence_tolerance"],
                      "enableDivergenceSolver": True},
        },
        "Materials": [{"id": "Fluid", "density0": case["rest_density"], "viscosityMethod": 1,
                       "Standard viscosity": {"viscosity": case["viscosity"]}}],
        "RigidBodies": [{
            "geometryFile": box_path, "translation": list((lower + upper) / 2), "scale": list(size),
            "isDynamic": False, "isWall": True, "mapInvert": True, "mapThickness": 0.0,
            "mapResolution": [max(4, math.ceil(s / h)) for s in size],
        }],
        "FluidBlocks": [{"denseMode": 0, "start": list(lo), "end": list(hi)}],
    }


def main() -> None:
    case, out, _ = parse_args(__doc__.splitlines()[0])
    import pysplishsplash as sph

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "waterrock" / "splishsplash"
    cache.mkdir(parents=True, exist_ok=True)
    box = cache / "tank.obj"
    box.write_text(BOX_OBJ, encoding="utf-8")
    scene_file = cache / f"dam_break_{case['method']}_{case['particles']}.json"  # its map cache goes beside it
    scene_file.write_text(json.dumps(scene_json(case, str(box)), indent=1), encoding="utf-8")

    marks: list[float] = []
    iterations: list[tuple[int, int]] = []
    final: dict = {}
    is_dfsph = case["method"] == "dfsph"

    def after_step() -> None:
        marks.append(time.perf_counter())
        sim = sph.Simulation.getCurrent()
        if is_dfsph:
            ts = sim.getTimeStep()
            iterations.append((ts.getValueInt(sph.TimeStepDFSPH.SOLVER_ITERATIONS),
                               ts.getValueInt(sph.TimeStepDFSPH.SOLVER_ITERATIONS_V)))
        if len(marks) >= case["steps"] and not final:  # the last step: read the particles now
            fm = sim.getFluidModel(0)
            n = fm.getNumActiveParticles0()
            final["x"] = np.array(fm.getFieldBuffer("position"), copy=True)[:n]

    base = sph.Exec.SimulatorBase()
    base.init(useGui=False, sceneFile=str(scene_file), outputDir=str(out), initialPause=False,
              useCache=True, stopAt=case["steps"] * case["time_step"])
    base.setTimeStepCB(after_step)
    base.run()
    if len(marks) < 2 or "x" not in final:
        raise SystemExit(f"SPlisHSPlasH ran {len(marks)} steps of {case['steps']}")
    extra = {}
    if iterations:
        it = np.asarray(iterations[: case["steps"]])
        extra["iterations"] = {"density_mean": float(it[:, 0].mean()), "density_max": int(it[:, 0].max()),
                               "divergence_mean": float(it[:, 1].mean()), "divergence_max": int(it[:, 1].max()),
                               "per_step_density": it[:, 0].tolist(), "per_step_divergence": it[:, 1].tolist()}
    write_result(
        out, final["x"], peer="splishsplash", method=case["method"], particles=len(final["x"]),
        steps=len(marks), timed_steps=case["steps"] - 1, wall_s=marks[case["steps"] - 1] - marks[0],
        device="cpu (OpenMP)", boundary="Koschier & Bender 2017 density maps", **extra,
    )


if __name__ == "__main__":
    main()
