"""The web workers spread over the CPUs: the master's choice, the worker's pinning, the command that asks for it."""
import itertools
import os
import threading
from types import SimpleNamespace

from appliance.cli.services import gunicorn_command
from appliance.config import load_config
from webui import cpu_pinning


class _Master:
    """gunicorn's master as the hook sees it: its live workers by pid."""

    def __init__(self):
        self.WORKERS, self._pids = {}, itertools.count(100)

    def start(self, cpus, monkeypatch):
        monkeypatch.setattr(cpu_pinning.os, "sched_getaffinity", lambda pid: set(cpus))
        worker = SimpleNamespace()
        cpu_pinning.pre_fork(self, worker)
        self.WORKERS[next(self._pids)] = worker
        return worker


def test_workers_get_the_least_used_allowed_cpu_and_a_replacement_takes_the_dead_ones(monkeypatch):
    master = _Master()
    assert [master.start({2, 3, 5}, monkeypatch).cpu for _ in range(4)] == [2, 3, 5, 2]
    dead = next(pid for pid, worker in master.WORKERS.items() if worker.cpu == 3)
    del master.WORKERS[dead]
    assert master.start({2, 3, 5}, monkeypatch).cpu == 3


def _in_a_thread(worker) -> tuple[set, set, set]:
    """Pin a throwaway thread as a worker pins itself (affinity is per thread); its CPUs before and after, and
    those of a thread it then starts."""
    seen = []

    def run():
        before = os.sched_getaffinity(0)
        cpu_pinning.pin(worker)
        started = []
        child = threading.Thread(target=lambda: started.append(os.sched_getaffinity(0)))
        child.start()
        child.join()
        seen.extend((before, os.sched_getaffinity(0), started[0]))
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return tuple(seen)


def test_a_pinned_worker_and_the_threads_it_starts_run_on_its_cpu_only():
    cpu = max(os.sched_getaffinity(0))
    _, pinned, started = _in_a_thread(SimpleNamespace(cpu=cpu))
    assert pinned == started == {cpu}


def test_a_worker_the_master_chose_no_cpu_for_or_a_cpu_gone_runs_unpinned(caplog):
    before, after, _ = _in_a_thread(SimpleNamespace())
    assert after == before
    before, after, _ = _in_a_thread(SimpleNamespace(cpu=os.cpu_count() + 64))
    assert after == before and "not pinned" in caplog.text


def test_the_web_command_asks_gunicorn_for_the_pinning_unless_turned_off(tmp_path):
    pinned = gunicorn_command(SimpleNamespace(config=load_config(tmp_path, environ={})))
    assert pinned[pinned.index("--config") + 1] == "python:webui.cpu_pinning"
    unpinned = gunicorn_command(SimpleNamespace(config=load_config(tmp_path, environ={
        "APPLIANCE_WEB__PIN_WORKERS": "false"})))
    assert "--config" not in unpinned
