"""Capability tokens: only their hashes are stored (see appliance/tokens.py)."""
import peewee

from appliance.models.base import OWNED, BaseModel, UTCDateTimeField
from appliance.models.guardian import Guardian
from appliance.models.message import Message


class CapabilityToken(BaseModel):
    """What one guardian link grants: a scope, for one guardian and maybe one message, until it expires."""

    token_hash = peewee.BlobField(unique=True)      # SHA-256 of the token; never the token
    scope = peewee.CharField()
    guardian = peewee.ForeignKeyField(Guardian, backref="tokens")
    message = peewee.ForeignKeyField(Message, null=True, backref="tokens")
    expires_at = UTCDateTimeField()
    created_at = UTCDateTimeField()

    class Meta:
        replication = OWNED
