"""Rate limits as a client meets them, in-process (the Redis-backed ones: test_shared_limits)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from api_gateway.config import Settings
from api_gateway.main import create_app

pytestmark = pytest.mark.anyio

LOGIN = "/auth/login"
REGISTER = "/auth/register"
PLENTY = "1000 per minute"


@contextlib.asynccontextmanager
async def client_at(settings: Settings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose socket peer is `peer`."""
    async with create_app(settings).running() as app:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


def email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def login_body(address: str, password: str = "wrong password") -> dict[str, str]:
    return {"email": address, "password": password}


def retry_after(response: httpx.Response) -> int:
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    return int(value)


def security_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.__dict__ for r in caplog.records if r.name == "security"]


async def test_the_per_address_limit_answers_429_with_retry_after(
    make_settings, open_gateway, product_upstream, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_gateway(make_settings(rate_limit_per_address="3 per minute")) as client:
        statuses = [(await client.get("/products")).status_code for _ in range(3)]
        refused = await client.get("/products/p-1")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 1 <= retry_after(refused) <= 60
    assert len(product_upstream.forwarded) == 3  # the refused request never left
    (event,) = security_events(caplog)
    assert event["security_event"] == "rate_limited"
    assert event["limit"] == "address"
    assert event["client"] == "203.0.113.7"


async def test_health_ready_and_metrics_are_never_limited(make_settings, open_gateway) -> None:
    async with open_gateway(make_settings(rate_limit_per_address="1 per minute")) as client:
        for _ in range(3):
            for path in ("/health", "/ready", "/metrics"):
                assert (await client.get(path)).status_code == 200
        assert (await client.get("/products")).status_code == 200
        assert (await client.get("/products")).status_code == 429


async def test_off_disables_the_per_address_limit(make_settings, open_gateway) -> None:
    settings = make_settings(
        rate_limit_per_address="off", rate_limit_login_per_address="1 per hour"
    )
    async with open_gateway(settings) as client:
        for _ in range(5):
            assert (await client.get("/products")).status_code == 200
        # login keeps its own limit
        assert (await client.post(LOGIN, json=login_body(email()))).status_code == 200
        assert (await client.post(LOGIN, json=login_body(email()))).status_code == 429


async def test_login_and_register_count_only_against_their_own_address_limits(
    make_settings, open_gateway
) -> None:
    settings = make_settings(
        rate_limit_per_address="1 per minute",
        rate_limit_login_per_address="2 per minute",
        rate_limit_register_per_address="3 per minute",
    )
    async with open_gateway(settings) as client:
        logins = [
            (await client.post(LOGIN, json=login_body(email()))).status_code for _ in range(3)
        ]
        registers = [
            (await client.post(REGISTER, json={"email": email()})).status_code for _ in range(4)
        ]
        reads = [(await client.get("/products")).status_code for _ in range(2)]
    assert logins == [200, 200, 429]
    assert registers == [200, 200, 200, 429]
    assert reads == [200, 429]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        pytest.param("GET", "/nowhere", 404, id="404-unknown-path"),
        pytest.param("DELETE", "/products", 405, id="405"),
        pytest.param("GET", "/auth/me", 401, id="401"),
        pytest.param("GET", "/auth/users", 403, id="403-by-role"),
    ],
)
async def test_earlier_errors_come_before_429_by_address(
    make_settings, open_gateway, tokens, method, path, expected
) -> None:
    headers = tokens.bearer(role="USER") if expected == 403 else {}
    async with open_gateway(make_settings(rate_limit_per_address="1 per minute")) as client:
        assert (await client.get("/products")).status_code == 200
        assert (await client.get("/products")).status_code == 429
        response = await client.request(method, path, headers=headers)
    assert response.status_code == expected


async def test_429_by_address_comes_before_413(make_settings, open_gateway, auth_upstream):
    settings = make_settings(rate_limit_login_per_address="1 per minute")
    async with open_gateway(settings) as client:
        assert (await client.post(LOGIN, json=login_body(email()))).status_code == 200
        oversized = b"x" * (1024 * 1024 + 1)
        response = await client.post(
            LOGIN, content=oversized, headers={"content-type": "application/json"}
        )
    assert response.status_code == 429
    assert len(auth_upstream.forwarded) == 1


@pytest.mark.parametrize("path", [LOGIN, REGISTER])
async def test_login_and_register_bodies_over_1_mib_get_413(client, auth_upstream, path):
    oversized = b'{"email": "' + b"a" * (1024 * 1024) + b'"}'
    response = await client.post(
        path, content=oversized, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b" " * 65536

    streamed = await client.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert auth_upstream.forwarded == []


async def test_failed_logins_count_per_email_and_then_even_the_right_password_gets_429(
    make_settings, open_gateway, auth_upstream, caplog: pytest.LogCaptureFixture
) -> None:
    target, other = email(), email()
    settings = make_settings(
        rate_limit_login_per_email="3 per minute", rate_limit_login_per_address=PLENTY
    )
    async with open_gateway(settings) as client:
        for _ in range(2):  # successful logins are not failures
            assert (await client.post(LOGIN, json=login_body(target))).status_code == 200
        for _ in range(3):
            failed = await client.post(f"{LOGIN}?status=401", json=login_body(target))
            assert failed.status_code == 401
        right_password = await client.post(LOGIN, json=login_body(target, "the right one"))
        other_user = await client.post(LOGIN, json=login_body(other))
    assert right_password.status_code == 429
    assert 1 <= retry_after(right_password) <= 60
    assert other_user.status_code == 200
    # Every attempt reached auth-service; only the last one's credential says "limited".
    eras = [r.credential_claims().get("era") for r in auth_upstream.forwarded]
    assert eras[:5] == [None] * 5
    assert eras[5] is not None and 1 <= eras[5] <= 60
    assert eras[6] is None
    events = [e for e in security_events(caplog) if e.get("limit") == "login-email"]
    assert len(events) == 1
    assert target not in str(events[0])  # a pseudonym, never the address


async def test_the_email_key_is_trimmed_and_lower_cased(
    make_settings, open_gateway, auth_upstream
) -> None:
    target = email()
    settings = make_settings(
        rate_limit_login_per_email="2 per minute", rate_limit_login_per_address=PLENTY
    )
    async with open_gateway(settings) as client:
        for variant in (f"  {target.upper()} ", f"\t{target}"):
            await client.post(f"{LOGIN}?status=401", json=login_body(variant))
        response = await client.post(LOGIN, json=login_body(target.title()))
    assert response.status_code == 429


def _json(document: dict[str, str]) -> str:
    return json.dumps(document, ensure_ascii=False)


# Bodies auth-service reads as naming `address`'s account: each must count against it.
SPELLINGS = [
    pytest.param(lambda doc: b"\xef\xbb\xbf" + _json(doc).encode(), id="utf-8-bom"),
    pytest.param(lambda doc: _json(doc).encode("utf-16-le"), id="utf-16-le"),
    pytest.param(lambda doc: _json(doc).encode("utf-16-be"), id="utf-16-be"),
    pytest.param(lambda doc: _json(doc).encode("utf-32"), id="utf-32"),
    pytest.param(
        lambda doc: _json(
            {**doc, "email": doc["email"].replace("@example.com", "@ｅxample.com")}
        ).encode(),
        id="full-width-domain",
    ),
    pytest.param(
        lambda doc: _json({**doc, "email": doc["email"].replace(".com", "。ＣＯＭ")}).encode(),
        id="ideographic-dot-upper-full-width",
    ),
]


@pytest.mark.parametrize("spell", SPELLINGS)
async def test_a_locked_email_stays_locked_in_any_spelling_the_service_reads(
    make_settings, open_gateway, auth_upstream, spell
) -> None:
    target = email()
    settings = make_settings(
        rate_limit_login_per_email="2 per minute", rate_limit_login_per_address=PLENTY
    )
    json_type = {"content-type": "application/json"}
    async with open_gateway(settings) as client:
        for _ in range(2):
            await client.post(f"{LOGIN}?status=401", json=login_body(target))
        disguised = await client.post(
            LOGIN, content=spell(login_body(target, "the right one")), headers=json_type
        )
    assert disguised.status_code == 429
    assert auth_upstream.forwarded[2].credential_claims()["era"] >= 1


@pytest.mark.parametrize("spell", SPELLINGS)
async def test_failures_in_any_spelling_count_against_the_one_email(
    make_settings, open_gateway, auth_upstream, spell
) -> None:
    target = email()
    settings = make_settings(
        rate_limit_login_per_email="2 per minute", rate_limit_login_per_address=PLENTY
    )
    json_type = {"content-type": "application/json"}
    async with open_gateway(settings) as client:
        for _ in range(2):
            await client.post(
                f"{LOGIN}?status=401", content=spell(login_body(target)), headers=json_type
            )
        plain = await client.post(LOGIN, json=login_body(target, "the right one"))
    assert plain.status_code == 429


@pytest.mark.parametrize("spell", SPELLINGS)
async def test_registrations_in_any_spelling_count_against_the_one_email(
    make_settings, open_gateway, auth_upstream, spell
) -> None:
    target = email()
    settings = make_settings(
        rate_limit_register_per_email="1 per hour", rate_limit_register_per_address=PLENTY
    )
    body = {"name": "N", "email": target, "password": "long enough"}
    async with open_gateway(settings) as client:
        first = await client.post(REGISTER, json=body)
        disguised = await client.post(
            REGISTER, content=spell(body), headers={"content-type": "application/json"}
        )
    assert [first.status_code, disguised.status_code] == [200, 429]


async def test_registrations_count_every_attempt_per_email(
    make_settings, open_gateway, auth_upstream
) -> None:
    target = email()
    settings = make_settings(
        rate_limit_register_per_email="2 per hour", rate_limit_register_per_address=PLENTY
    )
    body = {"name": "N", "email": target, "password": "long enough"}
    async with open_gateway(settings) as client:
        first = await client.post(REGISTER, json=body)
        taken = await client.post(f"{REGISTER}?status=409", json=body)
        third = await client.post(REGISTER, json=body)
    assert [first.status_code, taken.status_code, third.status_code] == [200, 409, 429]
    assert 1 <= retry_after(third) <= 3600
    assert auth_upstream.forwarded[2].credential_claims()["era"] == retry_after(third)


@pytest.mark.parametrize("path", [LOGIN, REGISTER])
async def test_an_exhausted_email_still_gets_the_services_validation_errors_first(
    make_settings, open_gateway, auth_upstream, path
) -> None:
    target = email()
    settings = make_settings(
        rate_limit_login_per_email="1 per minute",
        rate_limit_register_per_email="1 per minute",
        rate_limit_login_per_address=PLENTY,
        rate_limit_register_per_address=PLENTY,
    )
    async with open_gateway(settings) as client:
        await client.post(f"{path}?status=401", json=login_body(target))
        assert (await client.post(path, json=login_body(target))).status_code == 429
        invalid = await client.post(f"{path}?status=422", json={**login_body(target), "x": 1})
    assert invalid.status_code == 422
    assert len(auth_upstream.forwarded) == 3  # the service saw it, and judged it first
    assert auth_upstream.forwarded[2].credential_claims()["era"] >= 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"email": ', "application/json", id="malformed-json"),
        pytest.param(b'["a@example.com"]', "application/json", id="not-an-object"),
        pytest.param(b'{"email": 42}', "application/json", id="email-not-a-string"),
        pytest.param(b'{"email": "a@example.com"}', "text/plain", id="not-json"),
        pytest.param(b"", "application/json", id="empty"),
    ],
)
async def test_bodies_without_a_json_email_are_forwarded_and_never_counted(
    make_settings, open_gateway, auth_upstream, content, content_type
) -> None:
    settings = make_settings(
        rate_limit_login_per_email="1 per minute", rate_limit_login_per_address=PLENTY
    )
    async with open_gateway(settings) as client:
        for _ in range(3):
            response = await client.post(
                f"{LOGIN}?status=401", content=content, headers={"content-type": content_type}
            )
            assert response.status_code == 401
    assert [r.body for r in auth_upstream.forwarded] == [content] * 3
    assert all("era" not in r.credential_claims() for r in auth_upstream.forwarded)


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(make_settings) -> None:
    settings = make_settings(rate_limit_per_address="2 per minute")
    async with client_at(settings, "198.51.100.20") as client:
        statuses = [
            (await client.get("/products", headers={"X-Forwarded-For": f"192.0.2.{n}"})).status_code
            for n in range(4)
        ]
    assert statuses == [200, 200, 429, 429]


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(
    make_settings, product_upstream
) -> None:
    settings = make_settings(
        rate_limit_per_address="2 per minute", trusted_proxies="10.0.0.0/8,198.51.100.20"
    )
    async with client_at(settings, "198.51.100.20") as client:

        async def status(forwarded_for: str) -> int:
            headers = {"X-Forwarded-For": forwarded_for}
            return (await client.get("/products", headers=headers)).status_code

        # Each client has its own limit...
        assert [await status(f"192.0.2.{n}") for n in range(4)] == [200] * 4
        # ...and the right-most untrusted entry is the client: a spoofed left part and
        # our own inner proxies change nothing.
        assert await status("192.0.2.50") == 200
        assert await status("6.6.6.6, 192.0.2.50, 10.1.2.3") == 200
        assert await status("7.7.7.7, 192.0.2.50") == 429
    assert product_upstream.forwarded[-1].header("x-forwarded-for") == (
        "6.6.6.6, 192.0.2.50, 10.1.2.3, 198.51.100.20"
    )


async def test_x_forwarded_for_split_over_several_lines_is_one_list(make_settings) -> None:
    settings = make_settings(rate_limit_per_address="1 per minute", trusted_proxies="10.0.0.1")
    async with client_at(settings, "10.0.0.1") as client:
        # A proxy that adds its own line: the client's spoofed first line must not win.
        lines = [("X-Forwarded-For", "192.0.2.99"), ("X-Forwarded-For", "192.0.2.7")]
        assert (await client.get("/products", headers=lines)).status_code == 200
        lines[0] = ("X-Forwarded-For", "192.0.2.100")
        assert (await client.get("/products", headers=lines)).status_code == 429


async def test_an_unreachable_redis_leaves_limits_in_process_and_ready_degraded(
    make_settings, open_gateway, refused_url, caplog: pytest.LogCaptureFixture
) -> None:
    closed_port = refused_url.rsplit(":", 1)[1]
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{closed_port}/0", rate_limit_per_address="2 per minute"
    )
    async with open_gateway(settings) as client:
        statuses = [(await client.get("/products")).status_code for _ in range(3)]
        ready = await client.get("/ready")
    assert statuses == [200, 200, 429]
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"] == "degraded"
    warnings = [r for r in caplog.records if r.name == "api_gateway.redis_link"]
    assert len(warnings) == 1


async def test_ipv6_clients_of_one_64_share_a_limit(make_settings) -> None:
    statuses = []
    async with create_app(make_settings(rate_limit_per_address="2 per minute")).running() as app:
        peers = ("2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::9", "2001:db8:5:7::1")
        for peer in peers:
            transport = httpx.ASGITransport(app=app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
                statuses.append((await c.get("/products")).status_code)
    assert statuses == [200, 200, 429, 200]
