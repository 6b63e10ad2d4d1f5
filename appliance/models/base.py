"""The base model: UUIDv7 text keys, UTC times, and each table's replication kind."""
from __future__ import annotations

from datetime import datetime, timezone

import peewee
from playhouse.apsw_ext import BooleanField, DateTimeField

from appliance.db import database
from appliance.ids import uuid7

OWNED = "owned"   # one writer: the site that holds the current epoch
FACTS = "facts"   # insert-only, any site may write, merged by union

__all__ = ["BaseModel", "BooleanField", "UTCDateTimeField", "OWNED", "FACTS"]


class UTCDateTimeField(DateTimeField):
    """Stores aware datetimes as UTC text; returns them aware in UTC."""

    def db_value(self, value):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC field")
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        if isinstance(value, str):      # as stored: parsed in C, half the time of peewee's tries
            try:
                return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
            except ValueError:
                pass
        value = super().python_value(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=timezone.utc)
        return value


class BaseModel(peewee.Model):
    """Every replicated table: a UUIDv7 text key made where the row is written."""

    id = peewee.CharField(primary_key=True, max_length=36, default=uuid7)

    class Meta:
        database = database
        legacy_table_names = False
        replication: str | None = None
