"""Tailing a live queue_log through rotation: nothing read twice, nothing lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.procs import wait_until
from pipeline.ingest import tailer
from pipeline.ingest.tailer import follow


def scripted(*steps: Callable[[], None]) -> Callable[[], bool]:
    """A stop predicate that, each time the follower is idle, performs the next step."""
    pending = list(steps)

    def stop() -> bool:
        if pending:
            pending.pop(0)()
            return False
        return True

    return stop


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def L(n: int) -> str:
    return f"17000000{n:02d}|c{n}|q|NONE|ENTERQUEUE||{n}|1"


def read_all(path: Path, stop: Callable[[], bool]) -> list[tuple[str, str]]:
    return list(follow(path, stop=stop, poll_s=0, sleep=lambda _s: None))


def test_rename_rotation(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, L(1), L(2), L(3))

    def rotate() -> None:
        append(log, L(4))
        os.rename(log, tmp_path / "queue_log.1")
        append(tmp_path / "queue_log.1", L(5))  # still written before the reopen
        append(log, L(6), L(7))  # the new file

    got = read_all(log, scripted(rotate, lambda: append(log, L(8))))
    assert [line for _, line in got] == [L(n) for n in range(1, 9)]
    assert [pos for pos, _ in got] == [f"queue_log:{n}" for n in range(1, 9)]


def test_copytruncate_rotation(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, L(1), L(2), L(3))

    def copytruncate() -> None:
        shutil.copy(log, tmp_path / "queue_log.1")
        with log.open("r+") as f:
            f.truncate(0)
        append(log, L(4), L(5))

    got = read_all(log, scripted(copytruncate, lambda: append(log, L(6))))
    assert [line for _, line in got] == [L(n) for n in range(1, 7)]


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text(L(1) + "\n" + L(2)[:10])

    def finish() -> None:
        with log.open("a") as f:
            f.write(L(2)[10:] + "\n")

    got = read_all(log, scripted(finish))
    assert [line for _, line in got] == [L(1), L(2)]


def test_file_appearing_later_and_from_end(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    got = read_all(log, scripted(lambda: append(log, L(1))))
    assert [line for _, line in got] == [L(1)]
    got = list(
        follow(
            log,
            stop=scripted(lambda: append(log, L(2))),
            poll_s=0,
            from_end=True,
            sleep=lambda _s: None,
        )
    )
    assert [line for _, line in got] == [L(2)]


def test_live_writer_thread_with_both_rotations(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.touch()
    done = threading.Event()
    deadline = time.monotonic() + 20
    got: list[tuple[int, str]] = []

    def writer() -> None:
        n = 0
        for round_ in range(3):
            for _ in range(50):
                n += 1
                append(log, L(n % 100) + f"|{n}")
            # The follower reads every line before the rotation: what it has not read when a
            # file is copied and truncated is in the copy only (copytruncate's own gap).
            with contextlib.suppress(TimeoutError):  # the assertion below says what was missed
                wait_until(lambda n=n: len(got) >= n, 10, "the follower reading the lines written")
            if round_ == 0:
                os.rename(log, tmp_path / "queue_log.1")
                append(log)  # a new, empty file
            elif round_ == 1:
                shutil.copy(log, tmp_path / "queue_log.2")
                with log.open("r+") as f:
                    f.truncate(0)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    for item in follow(log, stop=lambda: done.is_set() or time.monotonic() > deadline, poll_s=0.01):
        got.append(item)
    thread.join(5)
    assert [int(line.rsplit("|", 1)[1]) for _, line in got] == list(range(1, 151))


def test_copytruncate_rewritten_past_the_old_length(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, L(1), L(2))

    def copytruncate_and_write_more() -> None:
        shutil.copy(log, tmp_path / "queue_log.1")
        with log.open("r+") as f:
            f.truncate(0)
        append(log, L(3), L(4), L(5))  # longer than the old file before we look

    got = read_all(log, scripted(copytruncate_and_write_more))
    assert [line for _, line in got] == [L(n) for n in range(1, 6)]


def test_copytruncate_and_rewrite_between_the_check_and_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is copied, truncated and rewritten past its old length right after the
    follower's first read once it had caught up (on a busy machine the writer can do all
    of that between two of the follower's system calls): no line of the rewrite is lost."""
    log = tmp_path / "queue_log"
    append(log, *(L(n) for n in range(1, 11)))
    idle = threading.Event()
    fired = threading.Event()

    def copytruncate_and_write_more() -> None:
        shutil.copy(log, tmp_path / "queue_log.1")
        with log.open("r+") as f:
            f.truncate(0)
        append(log, *(L(n) + "|again" for n in range(11, 22)))

    real_pread = os.pread

    def racing_pread(fd: int, n: int, at: int) -> bytes:
        data = real_pread(fd, n, at)
        if idle.is_set() and not fired.is_set():
            fired.set()
            copytruncate_and_write_more()
        return data

    monkeypatch.setattr(tailer.os, "pread", racing_pread)

    def stop() -> bool:
        if not idle.is_set():
            idle.set()  # caught up: the next read is the one the writer follows
            return False
        return fired.is_set()

    got = read_all(log, stop)
    assert fired.is_set()
    assert [line for _, line in got] == [L(n) for n in range(1, 11)] + [L(n) + "|again" for n in range(11, 22)]
