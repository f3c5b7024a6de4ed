"""Child processes die with the process that started them, however it dies.

A server killed with SIGKILL (or by the OOM killer) runs no clean-up code, so its children must
notice by themselves. Two mechanisms, because each misses a case:
- ``PR_SET_PDEATHSIG`` delivers SIGKILL the moment the parent exits, but it fires when the parent
  *thread* that forked exits, so it is only armed where the caller knows it was started from a
  long-lived thread (``immediate=True``);
- a daemon thread watches ``getppid()``: a child is re-parented (to init or a subreaper) when its
  parent dies, whichever thread started it. It costs one syscall per poll.
Grandchildren (rollout workers under a training job) bind to their own parent, so a death cascades.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

_PR_SET_PDEATHSIG = 1
POLL_S = 0.2
EXIT_PARENT_GONE = 75  # EX_TEMPFAIL: nobody is left to take this process's results


def _arm_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watcher thread still covers it


def bind_to_parent(parent_pid: int, *, immediate: bool = False) -> None:
    """Exit (without clean-up: the parent that wanted results is gone) once ``parent_pid`` is not our parent."""
    if immediate:
        _arm_pdeathsig()
    if os.getppid() != parent_pid:
        os._exit(EXIT_PARENT_GONE)  # it died while we were starting

    def watch() -> None:
        while True:
            time.sleep(POLL_S)
            if os.getppid() != parent_pid:
                os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
