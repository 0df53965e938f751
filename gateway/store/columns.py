"""Column types that keep values exact on SQLite and PostgreSQL alike: Decimals and UTC times."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Numeric, String
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field

from fixspec import messages as m


class ExactDecimal(TypeDecorator):
    """Decimal stored exactly: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, 12))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return value if dialect.name == "postgresql" else format(value, "f")

    def process_result_value(self, value, dialect):
        return None if value is None else m.plain(Decimal(value))


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, microseconds kept on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def decimal_column(**kw: Any) -> Any:
    """A model field stored as :class:`ExactDecimal`."""
    return Field(sa_column=Column(ExactDecimal(), **kw))


def utc_column(**kw: Any) -> Any:
    """A model field stored as :class:`UtcDateTime`."""
    return Field(sa_column=Column(UtcDateTime(), **kw))
