"""Projector calibration benchmark (Gray-code decode, solve, on-rock pass): ``waterrock bench procam``.

The implementation is ``waterrock.bench.procam`` (in the package, so the installed console
script has it); this script runs it from a checkout:

    python benchmarks/bench_procam.py [--camera 1280x720] [--projector 1920x1080] [--repeat 5] [--json out.json]
"""

from waterrock.bench.procam import main, run_benchmark, table  # noqa: F401 - this script's interface

if __name__ == "__main__":
    main()
