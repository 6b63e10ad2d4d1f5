"""Background work on huey, whose queue is its own SQLite file, local to the site.

The queue is only a nudge: the database holds what is due. Tasks are idempotent,
and the sweeper runs every minute to enqueue whatever is due and not done, so a
worker killed with tasks in hand loses nothing (huey delivers at most once).
"""
from __future__ import annotations

from huey import SqliteHuey, crontab

from appliance import deliveries, relay

QUEUE_NAME = "renraku"


def create_queue(app, *, immediate: bool = False) -> SqliteHuey:
    """Return the huey instance for this appliance with its tasks registered."""
    queue = SqliteHuey(QUEUE_NAME, filename=str(app.config.path("queue", "path")),
                       immediate=immediate, utc=True)

    @queue.task(name="deliver_email")
    def deliver_email() -> int:
        """Send due email until none is left; return how many deliveries were handled."""
        handled = 0
        sender = relay.SmtpRelay(app.config["mail"]["relay"])
        try:
            while batch := relay.deliver_due(app, sender):
                handled += batch
        finally:
            sender.close()
        return handled

    @queue.periodic_task(crontab(minute="*"), name="sweep")
    def sweep() -> int:
        """Enqueue delivery when anything is due (the queue may have lost a nudge)."""
        due = deliveries.count_due(app)
        if due:
            deliver_email()
        return due

    queue.deliver_email = deliver_email
    queue.sweep = sweep
    return queue
