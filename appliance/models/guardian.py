"""Guardians, their links to students, and their contact points (sealed at rest)."""
import peewee

from appliance.models.base import OWNED, BaseModel, BooleanField, UTCDateTimeField
from appliance.models.roster import Student

LINK_STATUSES = ("pending", "approved", "rejected")


class Guardian(BaseModel):
    name = peewee.CharField()
    locale = peewee.CharField(default="ja")
    created_at = UTCDateTimeField()
    quiet_from = peewee.IntegerField(null=True)      # Tokyo hour quiet hours start (routine messages wait)
    quiet_until = peewee.IntegerField(null=True)     # Tokyo hour they end
    routine_mail = BooleanField(default=True)        # off: routine messages make no email deliveries (appliance/routine_mail.py)
    routine_mail_changed_at = UTCDateTimeField(null=True)

    class Meta:
        replication = OWNED


class GuardianLink(BaseModel):
    """A guardian of one student; each school approves the links to its own students."""

    guardian = peewee.ForeignKeyField(Guardian, backref="links")
    student = peewee.ForeignKeyField(Student, backref="guardian_links")
    relationship = peewee.CharField(default="")
    status = peewee.CharField(default="pending")
    created_at = UTCDateTimeField()
    decided_at = UTCDateTimeField(null=True)

    class Meta:
        replication = OWNED


class ContactPoint(BaseModel):
    """Only appliance.contacts reads or writes this table."""

    guardian = peewee.ForeignKeyField(Guardian, backref="contact_points")
    kind = peewee.CharField()
    position = peewee.IntegerField()
    sealed = peewee.BlobField()
    lookup = peewee.CharField()
    label = peewee.CharField(default="")
    status = peewee.CharField(default="pending")
    created_at = UTCDateTimeField()
    confirmed_at = UTCDateTimeField(null=True)

    class Meta:
        replication = OWNED
