"""The contract's flow through the stack's one published port: what a first user does."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import httpx


class FlowError(AssertionError):
    """The system answered something the API contract does not allow."""


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise FlowError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code} {response.text[:500]}"
        )
    return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Seen:
    """What the first run left behind, for the second `up` to find again."""

    email: str
    password: str
    access_token: str
    kept_product_id: str
    word: str
    order_id: str
    stock_left: int


READY_WAIT_SECONDS = 90.0


def wait_until_ready(client: httpx.Client) -> float:
    """Until the gateway's /ready reports every check "ok" (each service's own /ready,
    its database included), as a load balancer or a readiness probe would wait; the
    seconds it took. A container's HEALTHCHECK is liveness (/health): healthy is not yet
    able to reach the database (podman's DNS can stall for seconds after a container
    joins the network)."""
    started = time.monotonic()
    report: object = None
    while time.monotonic() - started < READY_WAIT_SECONDS:
        try:
            response = client.get("/ready")
            report = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            report = repr(exc)
        else:
            checks = report.get("checks", {}) if isinstance(report, dict) else {}
            if response.status_code == 200 and checks and set(checks.values()) == {"ok"}:
                return time.monotonic() - started
        time.sleep(0.5)
    raise FlowError(f"GET /ready not ok after {READY_WAIT_SECONDS:.0f} s: {report}")


def login(client: httpx.Client, email: str, password: str) -> str:
    response = expect(client.post("/auth/login", json={"email": email, "password": password}), 200)
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def first_run(client: httpx.Client, *, admin_email: str, admin_password: str) -> Seen:
    """register, login, me, create, list with q, USER delete refused, ADMIN delete."""
    email = f"image-test-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    word = f"zq{secrets.token_hex(5)}"
    registered = expect(
        client.post(
            "/auth/register", json={"name": "Image Test", "email": email, "password": password}
        ),
        201,
    ).json()
    if registered["role"] != "USER" or registered["email"] != email:
        raise FlowError(f"register answered {registered}")
    token = login(client, email, password)
    me = expect(client.get("/auth/me", headers=bearer(token)), 200).json()
    if me["id"] != registered["id"]:
        raise FlowError(f"/auth/me is {me}, registered {registered}")

    ids = []
    for name in (f"Lamp {word}", f"Kept {word}"):
        created = expect(
            client.post("/products", json={"name": name, "price": 19.99}, headers=bearer(token)),
            201,
        ).json()
        if created["owner_id"] != me["id"] or created["price"] != 19.99:
            raise FlowError(f"created {created}")
        ids.append(created["id"])
    found = expect(client.get("/products", params={"q": word}), 200).json()
    if sorted(item["id"] for item in found["items"]) != sorted(ids):
        raise FlowError(f"search for {word} found {found}")

    expect(client.delete(f"/products/{ids[0]}", headers=bearer(token)), 403)
    admin_token = login(client, admin_email, admin_password)
    admin = expect(client.get("/auth/me", headers=bearer(admin_token)), 200).json()
    if admin["role"] != "ADMIN":
        raise FlowError(f"ADMIN_EMAIL's account is {admin}")
    expect(client.delete(f"/products/{ids[0]}", headers=bearer(admin_token)), 204)
    expect(client.get(f"/products/{ids[0]}"), 404)
    order_id, stock_left = place_order(client, token, word)
    return Seen(email, password, token, ids[1], word, order_id, stock_left)


def place_order(client: httpx.Client, token: str, word: str) -> tuple[str, int]:
    """An order through the gateway: order-service reserves the stock at product-service
    (with its own credential key pair) and records its event for NATS; a repeat with the
    same Idempotency-Key replays the first answer and reserves nothing more."""
    product = expect(
        client.post(
            "/products",
            json={"name": f"Stocked {word}", "price": 7.5, "stock": 5},
            headers=bearer(token),
        ),
        201,
    ).json()
    body = {"items": [{"product_id": product["id"], "quantity": 2}]}
    headers = {**bearer(token), "Idempotency-Key": f"image-test-{secrets.token_hex(8)}"}
    placed = expect(client.post("/orders", json=body, headers=headers), 201)
    order = placed.json()
    if order["status"] != "pending_payment" or order["items"][0]["quantity"] != 2:
        raise FlowError(f"POST /orders answered {order}")
    replayed = expect(client.post("/orders", json=body, headers=headers), 201)
    if replayed.content != placed.content:
        raise FlowError(f"the same Idempotency-Key answered {replayed.text}, first {placed.text}")
    stock = expect(client.get(f"/products/{product['id']}"), 200).json()["stock"]
    if stock != 3:
        raise FlowError(f"stock after ordering 2 of 5 is {stock}, expected 3")
    mine = expect(client.get(f"/orders/{order['id']}", headers=bearer(token)), 200).json()
    if mine["id"] != order["id"]:
        raise FlowError(f"GET /orders/{order['id']} answered {mine}")
    return str(order["id"]), stock


def after_restart(client: httpx.Client, seen: Seen) -> None:
    """After `down` and `up` again: accounts, products and signing keys are all still there."""
    # The token from before verifies: the signing keys and gateway key pair were kept.
    expect(client.get("/auth/me", headers=bearer(seen.access_token)), 200)
    login(client, seen.email, seen.password)
    found = expect(client.get("/products", params={"q": seen.word}), 200).json()
    # The product kept, not the stocked one the order was for: search by the kept name.
    kept = [item["id"] for item in found["items"] if item["name"].startswith("Kept ")]
    if kept != [seen.kept_product_id]:
        raise FlowError(f"after a second up, search for {seen.word} found {found}")
    # The order and its reservation are still there: order-service's own database.
    order = expect(client.get(f"/orders/{seen.order_id}", headers=bearer(seen.access_token)), 200)
    if order.json()["status"] != "pending_payment":
        raise FlowError(f"after a second up, the order is {order.text}")
    stocked = [item for item in found["items"] if item["name"].startswith("Stocked ")]
    if [item["stock"] for item in stocked] != [seen.stock_left]:
        raise FlowError(f"after a second up, the stocked product is {stocked}")
