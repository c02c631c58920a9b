"""Opaque keyset cursors for GET /auth/users: the (created_at, id) of the last item shown."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime


class MalformedCursor(ValueError):
    """The cursor was not made by encode_cursor."""


@dataclass(frozen=True, slots=True)
class UserCursor:
    created_at: datetime
    id: uuid.UUID


def encode_cursor(cursor: UserCursor) -> str:
    text = f"{cursor.created_at.astimezone(UTC).isoformat()}|{cursor.id}"
    return base64.urlsafe_b64encode(text.encode("ascii")).rstrip(b"=").decode("ascii")


def decode_cursor(raw: str) -> UserCursor:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        stamp, _, id_text = text.partition("|")
        created_at = datetime.fromisoformat(stamp)
        account_id = uuid.UUID(id_text)
        if created_at.tzinfo is None or len(raw) > 200:
            raise MalformedCursor("not a cursor from this API")
        created_at = created_at.astimezone(UTC)
    except (ValueError, UnicodeError, binascii.Error, OverflowError) as exc:
        raise MalformedCursor("not a cursor from this API") from exc
    return UserCursor(created_at=created_at, id=account_id)
