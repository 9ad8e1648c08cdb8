"""``waterrock bench``: the solver, the renderer, the tracker and the whole frame, measured.

One module per concern: ``stats`` (warm-up, repeats, median and spread), ``machine`` (what ran
it), ``cases`` (the dam break every solver runs, waterrock's and the peers'), ``density`` (one
density estimate applied to everyone's particles), ``solver``, ``render``, ``tracker``, ``frame``
(the benchmarks), ``peers`` (SPlisHSPlasH and Warp, each in its own process), ``figures`` and
``compare`` (the regression guard: ratios measured in one run), ``plot`` and ``command`` (the CLI).

The code lives in the package so that the console script works from an installed wheel; the
scripts in the repository's ``benchmarks/`` folder are thin wrappers around these modules.
"""
