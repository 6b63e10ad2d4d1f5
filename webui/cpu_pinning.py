"""Each web worker on a CPU of its own: gunicorn's hook for it (``--config python:webui.cpu_pinning``).

During a burst the machine runs more than the web workers: the MTA's signing processes, its
SMTP sessions, the queue's worker, and each web worker's own threads (its group commit, its
Flask pool). Left to the scheduler, a worker moved from core to core as they came and went, and
found its caches cold after each move. Pinned, a CoCo-net opening took ~15% less of the workers'
CPU and they answered a third more (bench/guardian_burst.py --with-blast on 2 cores, three runs
each, taken in turns: 1,557-2,167 against 2,312-2,714 req/s). The other services are not pinned
and take the CPU the workers leave, as before: the MTA, below them (Nice=10), sent less during
the bursts than it did beside workers that stalled at every move.

gunicorn's master chooses the CPU before it forks a worker (:func:`pre_fork`): the allowed one
with the fewest live workers, so a worker started again after a crash takes the place of the
one it replaces. The worker pins itself before it starts a thread (:func:`pin`, from
webui.front.Worker), and its threads run on the same CPU. ``[web] pin_workers = false`` leaves
the workers to the scheduler.
"""
from __future__ import annotations

import os
from collections import Counter


def pre_fork(server, worker) -> None:
    """gunicorn's pre_fork hook, in the master: give the worker about to start the allowed CPU (systemd's
    CPUAffinity=, a cpuset) with the fewest of the live workers, the lowest of those."""
    taken = Counter(getattr(sibling, "cpu", None) for sibling in server.WORKERS.values())
    worker.cpu = min(sorted(os.sched_getaffinity(0)), key=lambda cpu: taken[cpu])


def pin(worker) -> None:
    """In the worker, before it starts a thread: run it on the CPU the master chose (none: left as it is)."""
    cpu = getattr(worker, "cpu", None)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
