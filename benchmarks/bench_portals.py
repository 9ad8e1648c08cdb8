"""Portal hand-over benchmark (latency, largest sustained rate, against bare ZeroMQ): ``waterrock bench portals``.

The implementation is ``waterrock.bench.portals`` (in the package, so the installed console
script has it); this script runs it from a checkout:

    python benchmarks/bench_portals.py [--sizes 10 100 1000] [--seconds 4] [--rate-seconds 2] [--json out.json]
"""

from waterrock.bench.portals import main, run_benchmark, table  # noqa: F401 - this script's interface

if __name__ == "__main__":
    main()
