"""Solver benchmark (per method and N, the default scene, the peers): ``waterrock bench solver``.

The implementation is ``waterrock.bench.solver`` and ``waterrock.bench.peers`` (in the package,
so the installed console script has them); this script is the same command from a checkout:

    python benchmarks/bench_solver.py [--sizes 16000 64000 256000] [--methods pbf wcsph] [--json out.json]
"""

import sys

from waterrock.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "solver", *sys.argv[1:]]))
