import asyncio
import uuid

import pytest

pytestmark = pytest.mark.anyio


async def test_list_users_walks_every_user_once_in_creation_order(api):
    admin = api.bearer(await api.admin_tokens())
    for _ in range(5):
        await api.register()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await api.client.get("/auth/users", params=params, headers=admin)
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and pages == 3  # the bootstrap ADMIN and five users
    assert len({user["id"] for user in seen}) == 6
    keys = [(user["created_at"], user["id"]) for user in seen]
    assert keys == sorted(keys)
    assert all(set(user) == {"id", "name", "email", "role", "created_at"} for user in seen)


async def test_list_users_defaults_to_20_per_page(api):
    admin = api.bearer(await api.admin_tokens())
    for _ in range(20):
        await api.register()
    page = (await api.client.get("/auth/users", headers=admin)).json()
    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None
    rest = await api.client.get(
        "/auth/users", params={"cursor": page["next_cursor"]}, headers=admin
    )
    assert len(rest.json()["items"]) == 1
    assert rest.json()["next_cursor"] is None


async def test_next_cursor_is_null_when_the_page_ends_exactly_at_the_last_user(api):
    admin = api.bearer(await api.admin_tokens())
    await api.register()
    page = (await api.client.get("/auth/users", params={"limit": 2}, headers=admin)).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"limit": 0}, "query.limit", id="limit 0"),
        pytest.param({"limit": 101}, "query.limit", id="limit 101"),
        pytest.param({"limit": "ten"}, "query.limit", id="limit not a number"),
        pytest.param({"cursor": "garbage"}, "query.cursor", id="garbage cursor"),
        pytest.param({"cursor": "eyJ4IjoxfQ"}, "query.cursor", id="base64 json cursor"),
    ],
)
async def test_list_users_with_a_bad_parameter_returns_422(api, params, field):
    admin = api.bearer(await api.admin_tokens())
    response = await api.client.get("/auth/users", params=params, headers=admin)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_list_users_ignores_unknown_query_parameters(api):
    admin = api.bearer(await api.admin_tokens())
    response = await api.client.get("/auth/users", params={"sort": "email"}, headers=admin)
    assert response.status_code == 200


async def test_admin_endpoints_return_403_to_a_user_and_401_to_anonymous(api):
    user, tokens = await api.new_user()
    as_user = api.bearer(tokens)
    assert (await api.client.get("/auth/users", headers=as_user)).status_code == 403
    patch = await api.client.patch(
        f"/auth/users/{user['id']}", json={"role": "ADMIN"}, headers=as_user
    )
    assert patch.status_code == 403
    assert (await api.client.get("/auth/users")).status_code == 401
    anonymous = await api.client.patch(f"/auth/users/{user['id']}", json={"role": "ADMIN"})
    assert anonymous.status_code == 401


async def test_a_user_the_gateway_calls_admin_is_still_refused_if_the_database_disagrees(api):
    user, tokens = await api.new_user()
    forged = api.caller(user["id"], "ADMIN")
    assert (await api.client.get("/auth/users", headers=forged)).status_code == 403


async def test_role_check_comes_before_body_validation(api):
    user, tokens = await api.new_user()
    response = await api.client.patch(
        f"/auth/users/{user['id']}", json={"role": "ROOT"}, headers=api.bearer(tokens)
    )
    assert response.status_code == 403


async def test_promoting_a_user_returns_200_and_ends_their_sessions(api):
    user, tokens = await api.new_user()
    response = await api.set_role(user["id"], "ADMIN")
    assert response.status_code == 200
    assert response.json() == user | {"role": "ADMIN"}
    refreshed = await api.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401
    admin = api.bearer(await api.login(user["email"]))
    assert (await api.client.get("/auth/users", headers=admin)).status_code == 200


async def test_setting_the_same_role_is_a_200_no_op(api):
    user, tokens = await api.new_user()
    response = await api.set_role(user["id"], "USER")
    assert response.status_code == 200
    assert response.json() == user
    refreshed = await api.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200


@pytest.mark.parametrize(
    "user_id",
    [
        pytest.param(str(uuid.uuid4()), id="unknown id"),
        pytest.param("not-a-uuid", id="malformed id"),
        pytest.param("1", id="number"),
    ],
)
async def test_patching_a_user_that_does_not_exist_returns_404(api, user_id):
    response = await api.set_role(user_id, "ADMIN")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param({"role": "ROOT"}, id="unknown role"),
        pytest.param({"role": "admin"}, id="lower case"),
        pytest.param({}, id="no role"),
        pytest.param({"role": "ADMIN", "name": "x"}, id="extra field"),
        pytest.param({"role": None}, id="null"),
    ],
)
async def test_patching_with_an_invalid_body_returns_422(api, sent):
    user = await api.register()
    admin = api.bearer(await api.admin_tokens())
    response = await api.client.patch(f"/auth/users/{user['id']}", json=sent, headers=admin)
    assert response.status_code == 422


async def test_demoting_the_last_admin_returns_409(api):
    tokens = await api.admin_tokens()
    me = (await api.client.get("/auth/me", headers=api.bearer(tokens))).json()
    response = await api.client.patch(
        f"/auth/users/{me['id']}", json={"role": "USER"}, headers=api.bearer(tokens)
    )
    assert response.status_code == 409
    assert response.json()["status"] == 409


async def test_an_admin_may_demote_themselves_while_another_admin_remains(api):
    other = await api.register()
    await api.set_role(other["id"], "ADMIN")
    tokens = await api.admin_tokens()
    me = (await api.client.get("/auth/me", headers=api.bearer(tokens))).json()
    response = await api.client.patch(
        f"/auth/users/{me['id']}", json={"role": "USER"}, headers=api.bearer(tokens)
    )
    assert response.status_code == 200
    assert response.json()["role"] == "USER"


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(api):
    other = await api.register()
    await api.set_role(other["id"], "ADMIN")
    first = await api.admin_tokens()
    second = await api.login(other["email"])
    first_me = (await api.client.get("/auth/me", headers=api.bearer(first))).json()
    responses = await asyncio.gather(
        api.client.patch(
            f"/auth/users/{other['id']}", json={"role": "USER"}, headers=api.bearer(first)
        ),
        api.client.patch(
            f"/auth/users/{first_me['id']}", json={"role": "USER"}, headers=api.bearer(second)
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    # The loser is refused: 409 if it counted one ADMIN, 403 if its own demotion landed
    # first, 401 if that demotion had already revoked the session it came with.
    assert statuses[0] == 200 and statuses[1] in (401, 403, 409)
    roles = []
    for email, password in (
        (first_me["email"], api.ADMIN_PASSWORD),
        (other["email"], api.PASSWORD),
    ):
        me = await api.client.get("/auth/me", headers=api.bearer(await api.login(email, password)))
        roles.append(me.json()["role"])
    assert sorted(roles) == ["ADMIN", "USER"]
