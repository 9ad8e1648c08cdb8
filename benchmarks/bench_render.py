"""Renderer benchmark (ms per frame by segment count and resolution): ``waterrock bench render``.

The implementation is ``waterrock.bench.render`` (in the package, so the installed console
script has it); this script runs it from a checkout:

    python benchmarks/bench_render.py [--sizes 10000 100000] [--resolution 1920 1080] [--json out.json]
"""

from waterrock.bench.render import main, run_benchmark, table  # noqa: F401 - this script's interface

if __name__ == "__main__":
    main()
