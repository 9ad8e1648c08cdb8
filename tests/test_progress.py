"""Progress of long work: a bar on a terminal, plain lines now and then in a log, nothing when off."""

from __future__ import annotations

from waterrock.progress import progress


def test_a_log_gets_plain_lines_and_one_at_the_end(capsys):
    with progress("rock SDF 65x42x59", total=4, unit=" slices", log_every=0.0, terminal=False) as advance:
        for _ in range(4):
            advance(1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5  # one a step (log_every 0), and the end
    assert lines[0].startswith("waterrock: rock SDF 65x42x59: 1/4 slices (25%)")
    assert lines[-1].startswith("waterrock: rock SDF 65x42x59: 4/4 slices (100%)") and lines[-1].endswith("(done)")
    assert "\x1b[" not in capsys.readouterr().err  # no terminal codes in a log


def test_short_work_says_nothing_in_a_log(capsys):
    with progress("render", total=10, terminal=False) as advance:  # well under the 5 s between lines
        advance(10)
    assert capsys.readouterr().err == ""


def test_unknown_total_counts_what_was_done(capsys):
    with progress("record", total=None, unit=" frames", log_every=0.0, terminal=False) as advance:
        advance(3)
    assert "waterrock: record: 3 frames," in capsys.readouterr().err


def test_a_terminal_gets_a_bar(capsys):
    with progress("bench", total=2, unit=" benchmarks", terminal=True) as advance:
        advance(1)
        advance(1)
    err = capsys.readouterr().err
    assert "bench" in err and "2/2" in err


def test_disabled_shows_nothing(capsys):
    with progress("quiet", total=3, log_every=0.0, terminal=False, enabled=False) as advance:
        advance(3)
    assert capsys.readouterr().err == ""
