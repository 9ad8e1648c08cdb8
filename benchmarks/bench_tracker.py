"""Tracker benchmark (ms per frame and latency by resolution): ``waterrock bench tracker``.

The implementation is ``waterrock.bench.tracker`` (in the package, so the installed console
script has it); this script runs it from a checkout:

    python benchmarks/bench_tracker.py [--sizes 640x480 1280x720] [--repeat 60] [--json out.json]
"""

from waterrock.bench.tracker import main, run_benchmark, table  # noqa: F401 - this script's interface

if __name__ == "__main__":
    main()
