import pytest

pytestmark = pytest.mark.anyio


async def test_health_is_200(api):
    response = await api.direct.get("/health")
    assert response.json() == {"status": "ok"}


async def test_ready_is_200_when_the_schema_is_current_and_a_key_is_loaded(api):
    response = await api.direct.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "signing_keys": "ok"}


async def test_ready_is_503_while_migrations_are_pending(start_api, other_empty_database_url):
    async with start_api(auth_database_url=other_empty_database_url) as api:
        response = await api.direct.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "migration_pending"


@pytest.mark.parametrize(
    "admin",
    [
        pytest.param({}, id="no admin configured"),
        pytest.param(
            {"admin_email": "admin@example.com", "admin_password": "admin password 1"},
            id="admin to create",
        ),
    ],
)
async def test_ready_is_503_when_the_database_does_not_answer(start_api, admin):
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    async with start_api(auth_database_url=url, **admin) as api:
        response = await api.direct.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


async def test_every_response_carries_a_request_id(api):
    response = await api.client.get("/auth/me", headers={"x-request-id": "trace-me-123"})
    assert response.headers["x-request-id"] == "trace-me-123"
    assert response.json()["request_id"] == "trace-me-123"
