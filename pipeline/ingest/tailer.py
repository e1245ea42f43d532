"""Tailing a live log file (Asterisk's queue_log, or any line-based log) that survives
rotation by rename or by copytruncate. Used by ``replay --follow``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_TAIL = 256  # bytes before the read offset that must not change (copytruncate check)
_READ = 1 << 20  # at most this many new bytes per read (a large file is read in steps)


def _stopper(stop: Callable[[], bool] | threading.Event | None) -> Callable[[], bool]:
    if stop is None:
        return lambda: False
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


def follow(
    path: str | Path,
    *,
    stop: Callable[[], bool] | threading.Event | None = None,
    poll_s: float = 0.2,
    name: str | None = None,
    from_end: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[str, str]]:
    """Tail a live log file, yielding ``("<name>:<n>", line)`` for every full line
    (``name`` defaults to the file's name).

    Survives log rotation: when ``path`` names a new file (rename + create), the old
    file is read to its end first, then the new one from its start; when the file
    shrinks below the read offset, or the last bytes read are no longer where they
    were (copytruncate, even when rewritten past the old length at once), reading
    restarts at its start.
    Only complete lines are yielded; a partial last line waits for its newline (a
    rotated file's unterminated tail is yielded when the file is left). ``n`` counts
    lines over the whole follow, so positions stay unique across rotations.

    ``stop`` (a predicate or ``threading.Event``) is consulted only when everything
    written so far has been read: once it says stop, whatever is already in the file
    is still yielded, then the generator returns. Lines written between the copy and
    the truncate of copytruncate are lost to every reader (a limit of that method).
    """
    path = Path(path)
    label = name or path.name
    should_stop = _stopper(stop)
    lineno = 0
    handle = None
    inode: tuple[int, int] | None = None
    offset = 0
    pending = b""
    tail = b""
    first = True
    try:
        while True:
            if handle is None:
                try:
                    handle = open(path, "rb")  # noqa: SIM115 - kept open across rotations
                except FileNotFoundError:
                    if should_stop():
                        return
                    sleep(poll_s)
                    continue
                st = os.fstat(handle.fileno())
                inode = (st.st_dev, st.st_ino)
                offset = st.st_size if (first and from_end) else 0
                first = False
                pending = b""
                tail = b""
                if offset:
                    tail = os.pread(handle.fileno(), min(offset, _TAIL), offset - min(offset, _TAIL))
            progressed = False
            # copytruncate then fast rewriting can leave the file as long as before: the
            # bytes just read must still be where they were. They are read with what follows
            # them in one system call (pread): checked first and read after, a truncate and
            # rewrite in between would pass the check and lose the lines before the old length
            seen = os.pread(handle.fileno(), len(tail) + _READ, offset - len(tail))
            if seen[: len(tail)] == tail:
                chunk = seen[len(tail) :]
            else:
                offset, pending, tail = 0, b"", b""
                chunk = os.pread(handle.fileno(), _READ, 0)
            if chunk:
                progressed = True
                offset += len(chunk)
                tail = (tail + chunk)[-_TAIL:]
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    lineno += 1
                    yield f"{label}:{lineno}", raw.decode("utf-8", "replace").rstrip("\r")
            # rotation checks, only once caught up with the current file
            size = os.fstat(handle.fileno()).st_size
            try:
                st = os.stat(path)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                current = None
            if current is not None and current != inode:
                # renamed away and a new file is in place: drain the old one, switch
                handle.seek(offset)
                rest = pending + handle.read()
                handle.close()
                handle = None
                for raw in rest.split(b"\n"):
                    if raw:
                        lineno += 1
                        yield f"{label}:{lineno}", raw.decode("utf-8", "replace").rstrip("\r")
                continue
            if size < offset:  # copytruncate
                offset, pending, tail = 0, b"", b""
                continue
            if progressed:
                continue
            if should_stop():
                # one last look: anything written before stop was set is read
                if os.pread(handle.fileno(), 1, offset):
                    continue
                if os.path.exists(path) and _ident(path) != inode:
                    continue
                if os.fstat(handle.fileno()).st_size < offset:
                    continue
                if tail and os.pread(handle.fileno(), len(tail), offset - len(tail)) != tail:
                    continue
                return
            sleep(poll_s)
    finally:
        if handle is not None:
            handle.close()


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)
