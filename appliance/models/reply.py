"""Guardians' free replies to a message, with their files: facts (insert-only, merged by union)."""
import peewee

from appliance.models.base import FACTS, BaseModel, UTCDateTimeField
from appliance.models.guardian import Guardian
from appliance.models.message import Message

REPLY_VIA = ("web", "mail")


class Reply(BaseModel):
    """One reply; a guardian may send several, the school reads them all, newest first."""

    message = peewee.ForeignKeyField(Message, backref="replies")
    guardian = peewee.ForeignKeyField(Guardian, backref="replies")
    body = peewee.TextField(default="")
    via = peewee.CharField()                     # in REPLY_VIA
    auth_results = peewee.TextField(default="")  # a mail reply's Authentication-Results
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class ReplyFile(BaseModel):
    """A file sent with a reply (image or PDF, type read from the content)."""

    reply = peewee.ForeignKeyField(Reply, backref="files")
    filename = peewee.CharField()
    content_type = peewee.CharField()
    size = peewee.IntegerField()
    data = peewee.BlobField()

    class Meta:
        replication = FACTS
