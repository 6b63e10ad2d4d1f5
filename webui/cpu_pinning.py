"""The web workers spread over the CPUs, one each while there are enough: gunicorn's hook for it
(``--config python:webui.cpu_pinning``).

During a burst the machine runs more than the web workers: the MTA's signing processes, its
SMTP sessions, the queue's worker, and each web worker's own threads (its group commit, its
Flask pool). Left to the scheduler, the workers most likely moved from core to core as those
came and went and found their caches cold after each move: pinned (``taskset`` on a running
bench first, then this module), a CoCo-net opening took ~15% less of the workers' CPU and they
answered a third more (bench/guardian_burst.py --with-blast on 2 cores, three runs each, taken
in turns: 1,557-2,167 against 2,312-2,714 req/s). The other services are not pinned and take
the CPU the workers leave: the MTA, below them (Nice=10), sent less during the bursts than it
did beside workers that stalled.

gunicorn's master chooses the CPU before it forks a worker (:func:`pre_fork`): the allowed one
with the fewest live workers, so a worker started again after a crash takes the place of the
one it replaces, and more workers than CPUs are dealt out evenly (two on a CPU cannot move to
an idle one). The worker pins itself before it starts a thread (:func:`pin`, from
webui.front.Worker), and its threads run on the same CPU. Where the system cannot pin (not
Linux, a CPU gone since), the workers run as the scheduler places them. ``[web] pin_workers =
false`` leaves them to it.
"""
from __future__ import annotations

import logging
import os
from collections import Counter

_log = logging.getLogger(__name__)


def pre_fork(server, worker) -> None:
    """gunicorn's pre_fork hook, in the master: give the worker about to start the allowed CPU (systemd's
    CPUAffinity=, a cpuset) with the fewest of the live workers, the lowest of those."""
    if hasattr(os, "sched_getaffinity"):
        taken = Counter(getattr(sibling, "cpu", None) for sibling in server.WORKERS.values())
        worker.cpu = min(sorted(os.sched_getaffinity(0)), key=lambda cpu: taken[cpu])


def pin(worker) -> None:
    """In the worker, before it starts a thread: run it on the CPU the master chose (none: left as it is)."""
    cpu = getattr(worker, "cpu", None)
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as error:        # the CPU went away since the master chose it: run unpinned
        _log.warning("web worker not pinned to CPU %d: %s", cpu, error)
