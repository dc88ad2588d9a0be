"""A job's worker id names the process space (hostname + PID namespace) and the pid, so a
reaper only judges pids it can see: containers on the host network share the hostname, not
the PIDs (every container's worker is pid 1)."""

from __future__ import annotations

import os
import subprocess
import sys

from nmtune.service.jobs import repository as jobs_repo


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_identity_is_process_space_and_pid() -> None:
    ident = jobs_repo.worker_identity()
    space, _, pid = ident.rpartition(":")
    assert pid == str(os.getpid())
    assert space.startswith(os.uname().nodename)
    if os.path.exists("/proc/self/ns/pid"):
        assert f"/pidns-{os.stat('/proc/self/ns/pid').st_ino}" in space


def test_dead_pid_in_own_space_is_dead_elsewhere_unknown() -> None:
    pid = _dead_pid()
    space = jobs_repo.worker_identity().rpartition(":")[0]
    assert jobs_repo._pid_dead(f"{space}:{pid}")
    assert not jobs_repo._pid_dead(f"{space}:{os.getpid()}")  # this very process
    # same hostname, another PID namespace (another container): the pid says nothing here
    assert not jobs_repo._pid_dead(f"{os.uname().nodename}/pidns-1:{pid}")
    assert not jobs_repo._pid_dead(f"{os.uname().nodename}:{pid}")  # old format: unknown
    assert not jobs_repo._pid_dead(None)
