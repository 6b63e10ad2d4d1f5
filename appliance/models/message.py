"""Messages, what they carry, and the snapshot of who they go to."""
import peewee

from appliance.models.base import OWNED, BaseModel, BooleanField, UTCDateTimeField
from appliance.models.guardian import ContactPoint, Guardian
from appliance.models.school import School, StaffUser

PRIORITIES = ("emergency", "normal")
PRIORITY_RANK = {"emergency": 0, "normal": 1}    # deliveries are claimed in this order
CHANNELS = ("email", "push", "phone", "fax")
QUESTION_KINDS = ("single", "multiple", "text")
MESSAGE_KINDS = ("notice", "system")     # system: the appliance's own mail to one contact point


class Message(BaseModel):
    school = peewee.ForeignKeyField(School, backref="messages")
    author = peewee.ForeignKeyField(StaffUser, null=True, backref="messages")
    subject = peewee.TextField()
    body = peewee.TextField()
    audience = peewee.TextField()          # the targeting rule, as written
    priority = peewee.CharField(default="normal")
    reply_needed = BooleanField(default=False)
    channels = peewee.CharField(default="email")   # comma-separated, in CHANNELS
    send_at = UTCDateTimeField()
    expires_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()
    status = peewee.CharField(default="released")   # draft, awaiting_approval, released, rejected
    decided_by = peewee.ForeignKeyField(StaffUser, null=True, backref="decided")
    kind = peewee.CharField(default="notice")       # in MESSAGE_KINDS; staff pages list notices only
    link_scope = peewee.CharField(null=True)        # a system mail's link token scope (see appliance/system_mail.py)

    class Meta:
        replication = OWNED

    @property
    def channel_list(self) -> list[str]:
        """The channels as a list."""
        return [c for c in self.channels.split(",") if c]


class NoticeTemplate(BaseModel):
    """A notice staff start composing from; each school keeps and edits its own."""
    school = peewee.ForeignKeyField(School, backref="notice_templates")
    name = peewee.CharField()
    subject = peewee.TextField()
    body = peewee.TextField()
    priority = peewee.CharField(default="normal")
    updated_at = UTCDateTimeField()

    class Meta:
        replication = OWNED


class SurveyQuestion(BaseModel):
    message = peewee.ForeignKeyField(Message, backref="questions")
    position = peewee.IntegerField()
    kind = peewee.CharField()
    prompt = peewee.TextField()
    options = peewee.TextField(default="[]")    # JSON list of choices
    required = BooleanField(default=False)

    class Meta:
        replication = OWNED


class Attachment(BaseModel):
    message = peewee.ForeignKeyField(Message, backref="attachments")
    filename = peewee.CharField()
    content_type = peewee.CharField()
    size = peewee.IntegerField()
    data = peewee.BlobField()

    class Meta:
        replication = OWNED


class Recipient(BaseModel):
    message = peewee.ForeignKeyField(Message, backref="recipients")
    guardian = peewee.ForeignKeyField(Guardian, backref="received")

    class Meta:
        replication = OWNED


class Delivery(BaseModel):
    message = peewee.ForeignKeyField(Message, backref="deliveries")
    recipient = peewee.ForeignKeyField(Recipient, backref="deliveries")
    contact = peewee.ForeignKeyField(ContactPoint, backref="deliveries")
    channel = peewee.CharField()
    priority = peewee.IntegerField()               # 0 emergency, 1 normal (see PRIORITY_RANK)
    state = peewee.CharField(default="queued")
    attempts = peewee.IntegerField(default=0)
    due_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        replication = OWNED
