"""Server subprocesses for the benchmarks: start one and wait for its ready line, stop it, read
its CPU time (its own, or its whole process tree's)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def start_ready(
    name: str,
    argv: list[str],
    ready: str,
    stderr_path: Path,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 60,
) -> subprocess.Popen:
    """Start ``argv`` in the repository root, its stderr to ``stderr_path``, and wait until its
    first stdout line contains ``ready``; otherwise kill it and say why, with its stderr's tail."""
    with open(stderr_path, "wb") as stderr:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=preexec_fn,
        )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        line = proc.stdout.readline() if sel.select(timeout=timeout) else ""
    if ready not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{name} did not start ({line!r}):\n{stderr_path.read_text()[-2000:]}")
    return proc


def terminate(proc: subprocess.Popen, timeout: float) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and every descendant alive now, plus what its
    reaped children used: a server that spreads its work over several processes is measured
    whole, not just its first one."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        children = root.children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        try:
            t = child.cpu_times()
        except psutil.Error:  # it exited meanwhile: counted in its parent's reaped time
            continue
        total += t.user + t.system
    return total
