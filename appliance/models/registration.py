"""Registration codes, registrations waiting for their mailed link, and enquiries (see appliance/registration.py)."""
import peewee

from appliance.models.base import OWNED, BaseModel, UTCDateTimeField
from appliance.models.guardian import ContactPoint, Guardian
from appliance.models.message import Message
from appliance.models.roster import Student
from appliance.models.school import School


class RegistrationCode(BaseModel):
    """A one-time code for one guardian slot of a student; only its keyed hash is stored."""

    school = peewee.ForeignKeyField(School)
    student = peewee.ForeignKeyField(Student, backref="registration_codes")
    slot = peewee.IntegerField()
    code_hash = peewee.CharField(unique=True)
    status = peewee.CharField(default="active")      # active, used, void
    expires_at = UTCDateTimeField()
    created_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)
    guardian = peewee.ForeignKeyField(Guardian, null=True)

    class Meta:
        replication = OWNED


class Registration(BaseModel):
    """A registration waiting until the link mailed to its address is opened."""

    code = peewee.ForeignKeyField(RegistrationCode, backref="registrations")
    guardian = peewee.ForeignKeyField(Guardian)
    contact = peewee.ForeignKeyField(ContactPoint)
    message = peewee.ForeignKeyField(Message, unique=True)
    guardian_name = peewee.CharField(default="")
    relationship = peewee.CharField(default="")
    via = peewee.CharField()                          # web, mail
    status = peewee.CharField(default="waiting")      # waiting, done, void
    created_at = UTCDateTimeField()
    completed_at = UTCDateTimeField(null=True)

    class Meta:
        replication = OWNED


class Enquiry(BaseModel):
    """A guardian's enquiry to the operator; owned, since the operator opens and closes it."""

    school = peewee.ForeignKeyField(School, null=True)
    name = peewee.CharField()
    reach_sealed = peewee.BlobField()
    body = peewee.TextField()
    status = peewee.CharField(default="open")         # open, closed
    created_at = UTCDateTimeField()
    closed_at = UTCDateTimeField(null=True)
    closed_by = peewee.CharField(null=True)

    class Meta:
        replication = OWNED
