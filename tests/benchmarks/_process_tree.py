"""What the benchmark scripts measure about the machine: the memory of a process tree and the load."""

import subprocess


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants now (0 once it has gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
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
