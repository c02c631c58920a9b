"""The contract's flow through the stack's one published port: what a first user does."""

from __future__ import annotations

import secrets
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
    return Seen(email, password, token, ids[1], word)


def after_restart(client: httpx.Client, seen: Seen) -> None:
    """After `down` and `up` again: accounts, products and signing keys are all still there."""
    # The token from before verifies: the signing keys and gateway key pair were kept.
    expect(client.get("/auth/me", headers=bearer(seen.access_token)), 200)
    login(client, seen.email, seen.password)
    found = expect(client.get("/products", params={"q": seen.word}), 200).json()
    if [item["id"] for item in found["items"]] != [seen.kept_product_id]:
        raise FlowError(f"after a second up, search for {seen.word} found {found}")
