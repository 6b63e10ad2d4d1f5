"""The front under gunicorn as `appliance web` runs it: a burst of first taps, each on a connection of its own."""
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from appliance import tokens
from appliance.models import Guardian, Receipt, Recipient
from tests.integration.browser import core
from tests.integration.site import Site, http_get, wait_until


def test_a_burst_of_first_taps_is_answered_and_every_read_is_kept_and_no_link_logged(site: Site, tmp_path):
    site.run("init")
    site.run("demo")
    body = tmp_path / "body.txt"
    body.write_text("本日は大雪のため臨時休校とします。\n", encoding="utf-8")
    sent = json.loads(site.run("send", "--school", "demo", "--audience", "all", "--subject", "臨時休校",
                               "--body-file", str(body)).stdout)
    with core(site) as app:
        pairs = list(Recipient.select(Recipient.guardian, Recipient.message)
                     .where(Recipient.message == sent["message"]).tuples())
        issued = tokens.issue_tokens(app, "read", pairs)
        names = dict(Guardian.select(Guardian.id, Guardian.name).tuples())     # every demo guardian reads Japanese
    links = [tokens.token_url(app, "read", issued[pair]) for pair in pairs]
    site.serve_web()
    _assert_each_worker_runs_on_a_cpu_of_its_own(site.server.pid)

    with ThreadPoolExecutor(16) as pool:       # the first tap makes the page ready; the rest come at once
        answers = [(status, body.decode()) for status, body in pool.map(http_get, links)]
    assert {status for status, _ in answers} == {200}
    assert all("学校に「読みました」と伝わりました。" in page for _, page in answers)
    shown = re.compile(r"<p class=\"meta\">[^<]*· ([^<]*) 様</p>")
    assert [shown.search(page)[1] for _, page in answers] == [names[guardian] for guardian, _ in pairs]

    with core(site):
        assert Receipt.select().where(Receipt.message == sent["message"]).count() == len(pairs)
    log = site.stop()
    taps = [line for line in log.splitlines() if '"GET /r/… HTTP/1.1" 200' in line]
    assert len(taps) == len(links)
    assert not [token for token in issued.values() if token in log]


def _assert_each_worker_runs_on_a_cpu_of_its_own(master: int) -> None:
    """Every thread of a worker on the worker's one CPU, and (with as many CPUs) no two workers on the same."""
    def pinned() -> list[frozenset] | None:      # each worker's CPU once both have all their threads on one
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        cpus = [{frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{worker}/task")}
                for worker in workers]
        if len(cpus) == 2 and all(len(threads) == 1 and len(next(iter(threads))) == 1 for threads in cpus):
            return [next(iter(threads)) for threads in cpus]
        return None
    # /healthz needs one worker; the other may still be starting (forked, not yet pinned).
    cpus = wait_until(pinned, what="both workers pinned")
    if len(os.sched_getaffinity(master)) >= len(cpus):     # the CPUs the master chose from
        assert len(set(cpus)) == len(cpus)
