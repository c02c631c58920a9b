"""A request's session: closing it on a lost connection never fails the request."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from shop_common.database import open_session

pytestmark = pytest.mark.anyio


class LostSession:
    """A session whose rollback meets a connection the server terminated."""

    def __init__(self) -> None:
        self.invalidated = False

    async def close(self) -> None:
        raise DBAPIError("ROLLBACK", None, Exception("another operation is in progress"))

    async def invalidate(self) -> None:
        self.invalidated = True


async def test_closing_a_session_on_a_lost_connection_invalidates_it_quietly() -> None:
    session = LostSession()
    async with open_session(lambda: session) as opened:  # type: ignore[arg-type,return-value]
        assert opened is session  # type: ignore[comparison-overlap]
    assert session.invalidated


async def test_an_error_inside_the_block_still_reaches_the_caller() -> None:
    session = LostSession()
    with pytest.raises(LookupError):
        async with open_session(lambda: session):  # type: ignore[arg-type,return-value]
            raise LookupError("the handler's own error")
    assert session.invalidated
