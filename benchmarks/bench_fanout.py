"""Snapshot fan-out benchmark (a simulation node's frames to 1, 2 and 4 render nodes, against bare
ZeroMQ): ``waterrock bench fanout``.

The implementation is ``waterrock.bench.fanout`` (in the package, so the installed console
script has it); this script runs it from a checkout:

    python benchmarks/bench_fanout.py [--nodes 1 2 4] [--sizes 100000 1000000] [--encodings f32 f16 q16]
                                      [--seconds 2] [--json out.json]
"""

from waterrock.bench.fanout import main, run_benchmark, table  # noqa: F401 - this script's interface

if __name__ == "__main__":
    main()
