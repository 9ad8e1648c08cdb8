"""One rate limiter for every warning that may come each frame (rate_limit.RateLimitedLog)."""

import logging

from waterrock.rate_limit import RateLimitedLog


def test_each_cause_is_written_once_an_interval_and_then_says_how_many_were_held_back(caplog):
    now = [0.0]
    said = RateLimitedLog(logging.getLogger("waterrock.test"), interval=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="waterrock.test"):
        assert said.say(logging.WARNING, "drain", "draining %d", 1)
        assert said.say(logging.INFO, "refused", "refused %d", 1)  # another cause: its own clock
        for k in range(3):
            assert not said.say(logging.WARNING, "drain", "draining %d", k)
        now[0] = 5.0
        assert said.say(logging.WARNING, "drain", "draining %d", 9)
        assert said.warning("plain") and not said.warning("plain")
    assert [r.getMessage() for r in caplog.records] == [
        "draining 1", "refused 1", "draining 9 (3 similar messages suppressed)", "plain"]
    assert [r.levelno for r in caplog.records][:2] == [logging.WARNING, logging.INFO]
