"""Each web worker on a CPU of its own: the master's choice, the worker's pinning, the command that asks for it."""
import subprocess
import sys
from types import SimpleNamespace

from appliance.cli.services import gunicorn_command
from appliance.config import load_config
from webui import cpu_pinning


def _started(server, cpus, monkeypatch):
    """A worker as gunicorn's master starts it, with `cpus` allowed; it joins the live workers."""
    monkeypatch.setattr(cpu_pinning.os, "sched_getaffinity", lambda pid: set(cpus))
    worker = SimpleNamespace()
    cpu_pinning.pre_fork(server, worker)
    server.WORKERS[len(server.WORKERS) + 100] = worker
    return worker


def test_workers_get_the_least_used_allowed_cpu_and_a_replacement_takes_the_dead_ones(monkeypatch):
    server = SimpleNamespace(WORKERS={})
    assert [_started(server, {2, 3, 5}, monkeypatch).cpu for _ in range(4)] == [2, 3, 5, 2]
    dead = next(pid for pid, worker in server.WORKERS.items() if worker.cpu == 3)
    del server.WORKERS[dead]
    assert _started(server, {2, 3, 5}, monkeypatch).cpu == 3


def test_a_pinned_worker_and_the_threads_it_starts_run_on_its_cpu_only():
    script = ("import os, threading; from types import SimpleNamespace; from webui import cpu_pinning\n"
              "cpu = max(os.sched_getaffinity(0)); cpu_pinning.pin(SimpleNamespace(cpu=cpu))\n"
              "seen = []; thread = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))\n"
              "thread.start(); thread.join(); print(cpu, sorted(os.sched_getaffinity(0)), sorted(seen[0]))")
    cpu, own, thread = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                      check=True).stdout.split(" ", 2)
    assert own == f"[{cpu}]" and thread.strip() == f"[{cpu}]"


def test_a_worker_the_master_chose_no_cpu_for_is_left_alone():
    script = ("import os; from types import SimpleNamespace; from webui import cpu_pinning\n"
              "before = os.sched_getaffinity(0); cpu_pinning.pin(SimpleNamespace())\n"
              "print(os.sched_getaffinity(0) == before)")
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_the_web_command_asks_gunicorn_for_the_pinning_unless_turned_off(tmp_path):
    pinned = gunicorn_command(SimpleNamespace(config=load_config(tmp_path, environ={})))
    assert pinned[pinned.index("--config") + 1] == "python:webui.cpu_pinning"
    unpinned = gunicorn_command(SimpleNamespace(config=load_config(tmp_path, environ={
        "APPLIANCE_WEB__PIN_WORKERS": "false"})))
    assert "--config" not in unpinned
