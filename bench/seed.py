"""The data the scenarios read: users, a catalog, product ids, and a cursor deep in it.

The catalog goes straight into the product table with one INSERT … generate_series per
100,000 rows (the API would need minutes for a million); users are registered through
the API, as their bcrypt hashes must be the service's own.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.console import BenchError, say
from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner
from shop_common.keys import load_private_key

WORDS = (
    "lamp desk chair shelf table sofa rug mirror clock vase "
    "kettle mug plate bowl knife spoon towel pillow blanket basket"
).split()
SEARCH_WORD = "lamp"  # one name in twenty
SEARCH_PRICES = ("100", "200")  # about a tenth of the catalog's prices
BATCH = 100_000
PAGE = 100

_INSERT = text(
    """
    INSERT INTO product (id, name, name_lower, description, description_lower, price_cents,
                         currency, stock, sku, owner_id, created_at, updated_at, version)
    SELECT gen_random_uuid(), name, lower(name), description, lower(description),
           100 + abs(hashint4(i)) % 99900, 'USD', i % 500, NULL,
           (CAST(:owners AS uuid[]))[1 + i % cardinality(CAST(:owners AS uuid[]))],
           stamp, stamp, 1
    FROM (
        SELECT i,
               'Bench ' || (CAST(:words AS text[]))[1 + i % 20] || ' ' || i AS name,
               'A ' || (CAST(:words AS text[]))[1 + i % 20] || ' from the bench catalog, '
                   || 'number ' || i || '.' AS description,
               now() - i * interval '1 millisecond' AS stamp
        FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
    ) AS generated
    """
)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password: str


class Credentials:
    """Gateway credentials for direct calls, as only the gateway (and the bench) can mint."""

    LIFETIME_S = 60

    def __init__(self, private_key: Path) -> None:
        self._key = load_private_key(private_key)
        self._token = ""
        self._minted = 0.0

    def fresh(self) -> str:
        """A credential valid for at least 50 more seconds: mint one per round."""
        # A signer of its own each time: the signer reuses what it minted before.
        self._token = CredentialSigner(self._key, lifetime=self.LIFETIME_S).mint(
            audience="product-service",
            caller=Caller(user_id=None, role=None),
        )
        self._minted = time.monotonic()
        return self._token

    def current(self) -> str:
        return self._token if time.monotonic() - self._minted < 30 else self.fresh()

    def headers(self) -> dict[str, str]:
        return {CREDENTIAL_HEADER: self.current()}


async def register_users(client: httpx.AsyncClient, count: int) -> list[User]:
    async def one() -> User:
        email = f"bench-{secrets.token_hex(6)}@example.com"
        password = secrets.token_urlsafe(12)
        answer = await client.post(
            "/auth/register", json={"name": "Bench user", "email": email, "password": password}
        )
        _expect(answer, 201, "register a user")
        return User(id=answer.json()["id"], email=email, password=password)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def login(client: httpx.AsyncClient, user: User) -> str:
    answer = await client.post("/auth/login", json={"email": user.email, "password": user.password})
    _expect(answer, 200, "log in")
    token: str = answer.json()["access_token"]
    return token


async def seed_catalog_sql(database_url: str, count: int, owners: list[User]) -> None:
    engine = create_async_engine(database_url)
    try:
        started = time.monotonic()
        for first in range(1, count + 1, BATCH):
            last = min(first + BATCH - 1, count)
            async with engine.begin() as connection:
                await connection.execute(
                    _INSERT,
                    {
                        "owners": [user.id for user in owners],
                        "words": list(WORDS),
                        "first": first,
                        "last": last,
                    },
                )
            if count > BATCH:
                say(f"  catalog: {last:,} of {count:,} rows ({time.monotonic() - started:.0f} s)")
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        async with autocommit.connect() as connection:
            # What autovacuum would have done to a catalog this old: statistics, hint bits.
            await connection.exec_driver_sql("VACUUM ANALYZE product")
    finally:
        await engine.dispose()


async def seed_catalog_api(client: httpx.AsyncClient, count: int, token: str) -> None:
    """Without database access (BENCH_URL): POST each product, 16 at a time."""
    headers = {"Authorization": f"Bearer {token}"}
    queue = iter(range(1, count + 1))

    async def worker() -> None:
        for i in queue:
            word = WORDS[i % len(WORDS)]
            body = {
                "name": f"Bench {word} {i}",
                "description": f"A {word} from the bench catalog, number {i}.",
                "price": round(1 + (i * 7919) % 99900 / 100, 2),
                "stock": i % 500,
            }
            _expect(await client.post("/products", json=body, headers=headers), 201, "seed")

    await asyncio.gather(*(worker() for _ in range(16)))


async def sample_ids_sql(database_url: str, count: int) -> list[str]:
    """Product ids spread over the whole catalog."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT id FROM product ORDER BY random() LIMIT :count"), {"count": count}
            )
            return [str(row[0]) for row in rows]
    finally:
        await engine.dispose()


async def sample_ids(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[str]:
    """Without database access: the ids of the newest products."""
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < count:
        params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/products", params=params, headers=headers)
        _expect(answer, 200, "list products")
        page = answer.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return ids[:count]


async def deep_cursor(
    client: httpx.AsyncClient, credentials: Credentials | None, rows: int
) -> tuple[str, int]:
    """Follow next_cursor (100 rows a page) to about 90 % of `rows`; that cursor and its row."""
    target = max(int(rows * 0.9), PAGE)
    cursor: str | None = None
    seen = 0
    started = time.monotonic()
    while seen < target:
        params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        headers = credentials.headers() if credentials else {}
        answer = await client.get("/products", params=params, headers=headers)
        _expect(answer, 200, "walk the catalog")
        page = answer.json()
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
        seen += len(page["items"])
        if seen % 100_000 == 0:
            say(f"  deep cursor: row {seen:,} ({time.monotonic() - started:.0f} s)")
    if cursor is None:
        raise BenchError("the catalog has a single page: no deep page to measure")
    return cursor, seen


def _expect(answer: httpx.Response, status: int, what: str) -> None:
    if answer.status_code != status:
        raise BenchError(f"could not {what}: {answer.status_code} {answer.text[:300]}")
