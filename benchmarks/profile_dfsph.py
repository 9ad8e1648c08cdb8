"""Where a DFSPH substep's time goes: each kernel of the dam break timed between two syncs.

    python benchmarks/profile_dfsph.py [particles]     (default 16000; Taichi's CPU backend)

The substep's compiled graph is bypassed so that each launch can be timed alone: the times
include Taichi's argument checks (about 70 us a launch), which the graph saves, so their sum
exceeds a graphed substep's time. The pressure passes are split by whether the solve had
already converged when they were launched (they then return at once). docs/solver.md quotes
a run.
"""

from __future__ import annotations

import collections
import sys
import time

import taichi as ti

from waterrock.bench.cases import DamBreak
from waterrock.solver.dfsph import DONE
from waterrock.solver.solver import Solver

FRAME = 1.0 / 60.0


def profile(n: int = 16000, frames: int = 15) -> tuple[dict, dict, int, float]:
    solver = Solver(DamBreak(n=n, method="dfsph").scene(), arch="cpu")
    for _ in range(10):
        solver.step(FRAME)
    ti.sync()
    seconds: dict[str, float] = collections.defaultdict(float)
    launches: collections.Counter = collections.Counter()

    def run(batch) -> None:
        calls, batch.calls = batch.calls, []
        for kernel, args in calls:
            name = getattr(kernel, "__name__", None) or getattr(kernel.func, "__name__", "?")
            if name in ("pressure_parameter", "apply_pressure"):
                solve = next(a for a in args if a is solver.method.solve[0] or a is solver.method.solve[1])
                name += " (converged: returns)" if solve.to_numpy()[DONE] else " (iterating)"
            ti.sync()
            t = time.perf_counter()
            kernel(*args)
            ti.sync()
            seconds[name] += time.perf_counter() - t
            launches[name] += 1

    solver.graphs.run = run
    for _ in range(3):
        solver.step(FRAME)
    seconds.clear()
    launches.clear()
    substeps, iterations = 0, 0.0
    for _ in range(frames):
        st = solver.step(FRAME)
        substeps += int(st["substeps"])
        iterations += (st["divergence_iterations"] + st["density_iterations"]) * st["substeps"]
    return dict(seconds), dict(launches), substeps, iterations / substeps


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 16000
    seconds, launches, substeps, iterations = profile(n)
    total = sum(seconds.values())
    print(f"DFSPH dam break, {n} particles: {total * 1000 / substeps:.1f} ms a substep in kernels timed one by one, "
          f"{iterations:.2f} Jacobi iterations a substep")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {s * 1000 / substeps:6.2f} ms  {launches[name] / substeps:5.2f} launches  "
              f"{s * 1e6 / launches[name]:7.0f} us each  {100 * s / total:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
