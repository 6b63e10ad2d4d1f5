"""Background work on huey, whose queue is its own SQLite file, local to the site.

The queue is never the record of what must be done: the database is, and every task
is idempotent. Email is not here: the MTA service reads due deliveries from the
database itself. huey runs the appliance's periodic housekeeping, and the later
channels (push, FAX, phone) will add their delivery tasks beside it.
"""
from __future__ import annotations

from huey import SqliteHuey, crontab

from appliance import tokens

QUEUE_NAME = "renraku"


def create_queue(app, *, immediate: bool = False) -> SqliteHuey:
    """Return the huey instance for this appliance with its tasks registered."""
    queue = SqliteHuey(QUEUE_NAME, filename=str(app.config.path("queue", "path")),
                       immediate=immediate, utc=True)

    @queue.periodic_task(crontab(minute="17"), name="purge_tokens")
    def purge_tokens() -> int:
        """Hourly: drop expired link tokens, which a blast adds 40,000 at a time."""
        return tokens.purge_expired(app)

    queue.purge_tokens = purge_tokens
    return queue
