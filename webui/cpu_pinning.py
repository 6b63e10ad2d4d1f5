"""The web workers spread over the CPUs, one each while there are enough: gunicorn's hooks for it
(``--config python:webui.cpu_pinning``).

During a burst the machine runs more than the web workers (the MTA's signing processes, the
queue's worker, each web worker's own threads). Left to the scheduler, the workers most likely
moved from core to core and found their caches cold after each move; pinned, they answered a
third more CoCo-net openings (README, "Benchmarks": bench/guardian_burst.py --with-blast, with
and without ``--unpinned``). The other services are not pinned and take the CPU the workers leave.

gunicorn's master chooses the CPU before it forks a worker (:func:`pre_fork`): the allowed one
with the fewest live workers, so a worker started again after a crash takes the place of the
one it replaces, and more workers than CPUs are dealt out evenly (two on a CPU cannot move to
an idle one). The worker pins itself as soon as it is forked (:func:`post_fork`), before it
starts a thread, so its threads run on the same CPU. Where the system cannot pin (not Linux, a
CPU gone since), the workers run as the scheduler places them. ``[web] pin_workers = false``
leaves them to it.
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


def post_fork(server, worker) -> None:
    """gunicorn's post_fork hook, in the worker just forked: pin it (:func:`pin`)."""
    pin(worker)


def pin(worker) -> None:
    """In the worker, before it starts a thread: run it on the CPU the master chose (none: left as it is)."""
    cpu = getattr(worker, "cpu", None)
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as error:        # the CPU went away since the master chose it: run unpinned
        _log.warning("web worker not pinned to CPU %d: %s", cpu, error)
