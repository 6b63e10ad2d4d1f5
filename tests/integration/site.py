"""A site for the integration tier: a data dir with its own free ports, the `appliance` command pointed at it,
and the polling helpers the tests wait with."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from appliance.demo import DemoLogin

REPO = Path(__file__).resolve().parents[2]
APPLIANCE = [sys.executable, "-m", "appliance"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() is truthy and return its value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def http_get(url: str) -> tuple[int, bytes]:
    """GET a URL; return (status, body), or (0, b"") while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class Site:
    """A data dir with its own ports, and the `appliance` command pointed at it."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        web, sink, inbound = free_port(), free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{web}"
        self.env = dict(os.environ, APPLIANCE_DATA_DIR=str(data_dir),
                        APPLIANCE_WEB__BIND=f"127.0.0.1:{web}", APPLIANCE_WEB__BASE_URL=self.base_url,
                        APPLIANCE_WEB__WORKERS="2", APPLIANCE_SINK__BIND=f"127.0.0.1:{sink}",
                        APPLIANCE_MTA__INBOUND_BIND=f"127.0.0.1:{inbound}")
        self.server: subprocess.Popen | None = None

    def run(self, *args: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        """Run `appliance ARGS` against this site."""
        result = subprocess.run([*APPLIANCE, *args], env=self.env, input=stdin, capture_output=True,
                                cwd=self.data_dir.parent, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"appliance {' '.join(args)} failed:\n{result.stderr.decode()}")
        return result

    def set_up_demo(self) -> list[DemoLogin]:
        """`make demo-setup`'s steps: init, dkim init, push init, demo; return the staff logins the demo made."""
        self.run("init")
        self.run("dkim", "init")            # the MTA signs every mail: tests that deliver need the key
        self.run("push", "init")            # `serve` starts the push worker, which needs its keys
        return [DemoLogin(**login) for login in json.loads(self.run("demo").stdout)["logins"]]

    def serve(self) -> None:
        """Start `appliance serve` and wait until /healthz says all is well."""
        self._start([*APPLIANCE, "serve"])
        def healthy() -> bool:
            status, body = http_get(f"{self.base_url}/healthz")
            return status == 200 and b'"ok":true' in body.replace(b" ", b"")
        wait_until(healthy, what="healthz ok")

    def serve_web(self) -> None:
        """Start only the web UI (`appliance web`, as `serve` and systemd run it) and wait for /healthz."""
        self._start(APPLIANCE + ["web"])
        wait_until(lambda: http_get(f"{self.base_url}/healthz")[0] == 200, what="web UI up")

    def _start(self, argv: list[str]) -> None:
        # Own session: stop() ends the whole process group (serve's children, gunicorn's workers).
        # Output goes to a file, not a pipe: nobody reads a pipe while tests run, and once its
        # 64 KB filled with access-log lines every gunicorn worker blocked on its next write.
        self.log = self.data_dir.parent / "server.log"
        with open(self.log, "ab") as log:
            self.server = subprocess.Popen(argv, env=self.env, cwd=self.data_dir.parent,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> str:
        """Stop `serve` (and everything it started); return what it printed."""
        if self.server is None:
            return ""
        os.killpg(self.server.pid, signal.SIGTERM)
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()
        self.server = None
        return self.log.read_text(encoding="utf-8", errors="replace")
