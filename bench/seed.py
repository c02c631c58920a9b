"""The data the scenarios read: users, a catalog, product ids, and a cursor deep in it.

The catalog goes straight into the product table with one INSERT … generate_series per
100,000 rows (the API would need minutes for a million); users are registered through
the API, as their bcrypt hashes must be the service's own.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.console import BenchError, say
from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner, RequestBinding
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
    """Gateway credentials for direct calls, as only the gateway (and the bench) can mint:
    one per request, bound to its method, path, query and request id."""

    # The direct run sends at most this many requests per second of its duration: each
    # needs its own credential, minted before wrk starts (wrk cannot sign).
    DIRECT_RATE_CAP = 6000

    def __init__(self, private_key: Path) -> None:
        self._signer = CredentialSigner(load_private_key(private_key), lifetime=60)

    def mint(self, method: str, target: str, request_id: str) -> str:
        return self._signer.mint(
            audience="product-service",
            caller=Caller(user_id=None, role=None),
            request=RequestBinding.of_target(method, target, request_id),
        )

    def auth(self) -> httpx.Auth:
        """For an httpx client calling product-service directly."""
        return _PerRequest(self)


class _PerRequest(httpx.Auth):
    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request_id = uuid.uuid4().hex
        target = request.url.raw_path.decode("ascii")
        request.headers["x-request-id"] = request_id
        request.headers[CREDENTIAL_HEADER] = self._credentials.mint(
            request.method, target, request_id
        )
        yield request


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


async def sample_ids(client: httpx.AsyncClient, count: int) -> list[str]:
    """Without database access: the ids of the newest products."""
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < count:
        params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/products", params=params)
        _expect(answer, 200, "list products")
        page = answer.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return ids[:count]


async def deep_cursor(client: httpx.AsyncClient, rows: int) -> tuple[str, int]:
    """Follow next_cursor (100 rows a page) to about 90 % of `rows`; that cursor and its row."""
    target = max(int(rows * 0.9), PAGE)
    cursor: str | None = None
    seen = 0
    started = time.monotonic()
    while seen < target:
        params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/products", params=params)
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


ORDER_PRODUCTS = 20
ORDER_STOCK = 2_000_000_000  # no run can sell it out: every POST /orders is a 201
ORDERS_TO_READ = 200


async def seed_orders(client: httpx.AsyncClient, token: str) -> tuple[list[str], list[str]]:
    """Products for the order scenarios, and orders of the token's user for GET /orders/{id}."""
    headers = {"Authorization": f"Bearer {token}"}
    products = []
    for i in range(ORDER_PRODUCTS):
        body = {"name": f"Bench order product {i}", "price": 9.99, "stock": ORDER_STOCK}
        answer = await client.post("/products", json=body, headers=headers)
        _expect(answer, 201, "create a product to order")
        products.append(answer.json()["id"])
    tag = secrets.token_hex(4)

    async def place(n: int) -> str:
        body = {"items": [{"product_id": products[n % len(products)], "quantity": 1}]}
        answer = await client.post(
            "/orders", json=body, headers={**headers, "Idempotency-Key": f"seed-{tag}-{n}"}
        )
        _expect(answer, 201, "place an order")
        order_id: str = answer.json()["id"]
        return order_id

    orders = []
    for start in range(0, ORDERS_TO_READ, 16):
        stop = min(start + 16, ORDERS_TO_READ)
        orders += await asyncio.gather(*(place(n) for n in range(start, stop)))
    return products, orders
