"""Peer solvers for ``waterrock bench``: each a standalone script run in its own process.

    python benchmarks/peers/<peer>.py CASE.json OUT_DIR [--device cpu|cuda]

reads the dam break of ``waterrock.bench.cases`` from CASE.json, times it, and writes
OUT_DIR/result.json and OUT_DIR/positions.npy (the final particle positions, from which the
parent process computes the density error the same way for every solver). A script imports
only numpy and its peer library: a crash in a peer (a segfault on import) cannot take the
benchmark down, and the peer's threads and GPU context do not share a process with Taichi.
"""
