"""Facts: insert-only rows any site may write; replication merges them by union."""
import peewee

from appliance.models.base import FACTS, BaseModel, UTCDateTimeField
from appliance.models.guardian import Guardian
from appliance.models.message import Delivery, Message, SurveyQuestion


class DeliveryResult(BaseModel):
    delivery = peewee.ForeignKeyField(Delivery, backref="results")
    outcome = peewee.CharField()
    detail = peewee.TextField(default="")
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class Receipt(BaseModel):
    """A read report: recorded once per tap; readers count distinct guardians."""

    message = peewee.ForeignKeyField(Message, backref="receipts")
    guardian = peewee.ForeignKeyField(Guardian, backref="receipts")
    kind = peewee.CharField(default="read")
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class SurveyAnswer(BaseModel):
    """One answer to one question; the newest per guardian and question is the current one."""

    message = peewee.ForeignKeyField(Message, backref="answers")
    guardian = peewee.ForeignKeyField(Guardian, backref="answers")
    question = peewee.ForeignKeyField(SurveyQuestion, backref="answers")
    value = peewee.TextField()          # JSON
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class AuditEntry(BaseModel):
    at = UTCDateTimeField()
    actor = peewee.CharField()          # a staff login, or "cli:<user>"
    action = peewee.CharField()
    school_id = peewee.CharField(null=True)
    subject_id = peewee.CharField(null=True)
    detail = peewee.TextField(default="{}")   # JSON; never contact data
    site = peewee.CharField()

    class Meta:
        replication = FACTS
