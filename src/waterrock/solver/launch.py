"""A substep's kernel launches, replayed as one compiled Taichi graph.

Taichi 1.7 checks every argument of every launch in Python: about 4 us per ndarray, 70 us for a
kernel of 13 arguments (measured on the 2-core CPU). A compiled graph (``ti.graph``) dispatches
the same kernel in about 12 us. A substep is 15 to 40 launches with no host read between them,
so the solver records them in a :class:`Batch` and runs the batch as a graph: one per distinct
sequence of kernels and argument types, compiled on first use and cached. The arguments are
bound by position on every run, so the front and back buffers may trade places between runs.
Where a part of the substep repeats a varying number of times (DFSPH's iterations), the solver
runs what it has recorded before it (``Solver.flush``), so that the part is a graph of its own
and the number of graphs stays fixed.

Where graphs cannot be built (a backend without them), the batch launches its kernels one by
one, after a warning.
"""

from __future__ import annotations

import logging

import taichi as ti

log = logging.getLogger(__name__)


class Batch:
    """Kernel launches recorded in order: ``batch(kernel, *args)`` in place of ``kernel(*args)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, tuple]] = []

    def __call__(self, kernel, *args) -> None:
        self.calls.append((kernel, args))


def launch_now(kernel, *args) -> None:
    """The direct launcher, for work outside a substep (reset, measurement)."""
    kernel(*args)


def _array_type(a: ti.Ndarray):
    n = getattr(a, "n", None)
    m = getattr(a, "m", None)
    if m is not None:
        return ti.types.matrix(n, m, a.dtype)
    if n is not None:
        return ti.types.vector(n, a.dtype)
    return a.dtype


def _array_signature(a: ti.Ndarray) -> tuple:
    """What a graph's symbol for an array depends on (Taichi's vector types compare by identity:
    not those)."""
    return (getattr(a, "n", None), getattr(a, "m", None), str(a.dtype), len(a.shape))


class Graphs:
    """Runs batches as compiled graphs, one per sequence of kernels and argument types."""

    def __init__(self) -> None:
        # a graph, and per call its arguments' names and the casts their scalar values need (None
        # for arrays)
        self._compiled: dict[tuple, tuple[object, list, list]] = {}
        self._arrays: dict[int, tuple[ti.Ndarray, tuple]] = {}  # id -> (the array, its signature)
        self.enabled = True

    def run(self, batch: Batch) -> None:
        calls, batch.calls = batch.calls, []
        compiled = self._lookup(calls) if calls and self.enabled else None
        if compiled is None:
            for kernel, args in calls:
                kernel(*args)
            return
        graph, names, casts = compiled
        values = {}
        for (_, args), call_names, call_casts in zip(calls, names, casts, strict=True):
            for name, cast, a in zip(call_names, call_casts, args, strict=True):
                values[name] = a if cast is None else cast(a)
        graph.run(values)

    def _signature(self, args) -> tuple:
        """The calls' argument types: an array's looked up by identity, as a substep passes the
        same few arrays every time (measured on an H100: computing them afresh took a fifth of
        the host's time of a WCSPH substep)."""
        out = []
        for a in args:
            if isinstance(a, ti.Ndarray):
                known = self._arrays.get(id(a))
                if known is None or known[0] is not a:
                    known = self._arrays[id(a)] = (a, _array_signature(a))
                out.append(known[1])
            else:
                out.append(type(a))
        return tuple(out)

    def _lookup(self, calls: list) -> tuple[object, list, list] | None:
        """The calls' graph, compiled on first use; None (and graphs off) where none can be built."""
        key = tuple((kernel, self._signature(args)) for kernel, args in calls)
        if key not in self._compiled:
            try:
                self._compiled[key] = self._compile(calls)
            except Exception as err:  # noqa: BLE001 - any failure: launch one by one from now on
                log.warning("Taichi graphs unavailable here (%s): kernels are launched one by one", err)
                self.enabled = False
                return None
        return self._compiled[key]

    def _compile(self, calls: list) -> tuple[object, list, list]:
        builder = ti.graph.GraphBuilder()
        names, casts = [], []
        for c, (kernel, args) in enumerate(calls):
            symbols, call_names, call_casts = [], [], []
            for k, (param, a) in enumerate(zip(kernel._primal.arguments, args, strict=True)):
                name = f"{c}_{k}"
                if isinstance(a, ti.Ndarray):
                    symbols.append(ti.graph.Arg(ti.graph.ArgKind.NDARRAY, name, dtype=_array_type(a),
                                                ndim=len(a.shape)))
                    call_casts.append(None)
                else:
                    dtype = param.annotation
                    symbols.append(ti.graph.Arg(ti.graph.ArgKind.SCALAR, name, dtype=dtype))
                    call_casts.append(float if dtype in (ti.f32, ti.f64) else int)
                call_names.append(name)
            builder.dispatch(kernel, *symbols)
            names.append(call_names)
            casts.append(call_casts)
        return builder.compile(), names, casts
