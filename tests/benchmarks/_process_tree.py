"""What the benchmark scripts measure about the machine: the memory of a process tree and the load.

A process tree here is everything a measured process starts, orphans included: pyspark's JVM (started by dbt's
Python, with the Spark engine) outlives that Python, which never waits for it; orphaned, it would be re-parented
to init, and neither its memory (no longer a descendant) nor its CPU (reaped by init, not by us) would count.
``become_subreaper()`` makes the benchmark process adopt such orphans instead; ``reap_adopted()`` waits for
them so that getrusage(RUSAGE_CHILDREN) includes their CPU, and ``PeakTreeRss(pid, adopted=True)`` samples them.
"""

import os
import subprocess
import threading
import time

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def tree_rss(pid: int, include_root: bool = True) -> int:
    """Resident bytes of a process and all its descendants now (0 once it has gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)] if include_root else root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass  # a child that exited between listing and reading
    return total


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def become_subreaper() -> bool:
    """Adopt the orphaned descendants of our children (Linux prctl); False where that is not possible."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_adopted(timeout: float = 120.0) -> int:
    """Wait (up to ``timeout`` s) for every child this process still has: after the measured process has
    exited, those are orphans it adopted (a JVM shutting down). Returns how many were reaped."""
    reaped, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped  # no children left
        if pid:
            reaped += 1
        else:
            time.sleep(0.1)
    return reaped


class PeakTreeRss:
    """While inside ``with``: samples the process tree's resident memory every ``every`` seconds; ``peak`` in bytes.

    ``adopted``: sample every descendant of this process instead of ``pid``'s (the measured process, its
    descendants and the orphans this subreaper adopted; one measured process at a time)."""

    def __init__(self, pid: int, every: float = 0.2, adopted: bool = False):
        self.pid, self.every, self.peak = pid, every, 0
        self.adopted = adopted
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            now = tree_rss(os.getpid(), include_root=False) if self.adopted else tree_rss(self.pid)
            self.peak = max(self.peak, now)
            self._done.wait(self.every)

    def __enter__(self) -> "PeakTreeRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
