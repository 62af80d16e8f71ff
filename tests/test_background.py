"""geogrid.background: the poller thread runs, survives a failing round, stops at once."""

from __future__ import annotations

import threading
import time

import pytest

from geogrid.background import Poller


def test_rounds_run_until_stopped_and_a_failure_is_not_fatal() -> None:
    rounds: list[int] = []
    errors: list[Exception] = []
    third = threading.Event()

    def work() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("first round fails")
        if len(rounds) >= 3:
            third.set()

    poller = Poller(work, interval=0.01, name="test-poller", on_error=errors.append)
    poller.start()
    assert poller.running
    assert third.wait(5)
    started = time.perf_counter()
    poller.stop()
    assert time.perf_counter() - started < 1
    assert not poller.running
    assert [str(e) for e in errors] == ["first round fails"]
    done = len(rounds)
    time.sleep(0.05)
    assert len(rounds) == done  # no round after stop()


def test_default_error_handler_logs(caplog: pytest.LogCaptureFixture) -> None:
    failed = threading.Event()

    def work() -> None:
        failed.set()
        raise ValueError("boom")

    poller = Poller(work, interval=0.01, name="test-logging")
    with caplog.at_level("WARNING", logger="geogrid.background"):
        poller.start()
        assert failed.wait(5)
        poller.stop()
    assert "test-logging: round failed: boom" in caplog.text


def test_zero_interval_starts_nothing() -> None:
    poller = Poller(lambda: None, interval=0, name="off")
    poller.start()
    assert not poller.running
    poller.stop()
