import pytest
from pydantic import ValidationError

from auth_service.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in (
        "BCRYPT_ROUNDS",
        "SHOP_TESTING",
        "ACCESS_TOKEN_TTL_SECONDS",
        "DATA_DIR",
        "REDIS_URL",
        "REVOCATION_REDIS_KEY",
        "REFRESH_IDLE_SECONDS",
        "REFRESH_ABSOLUTE_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_production_bcrypt_cost_default_is_at_least_12():
    assert Settings.model_fields["bcrypt_rounds"].default >= 12
    assert Settings().bcrypt_rounds >= 12


def test_bcrypt_cost_below_12_is_refused_outside_tests():
    with pytest.raises(ValidationError, match="BCRYPT_ROUNDS=11 is below 12"):
        Settings(bcrypt_rounds=11)


def test_bcrypt_cost_below_12_is_refused_from_the_environment(monkeypatch):
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    with pytest.raises(ValidationError):
        Settings()


def test_bcrypt_cost_below_12_is_allowed_in_tests():
    assert Settings(bcrypt_rounds=4, shop_testing=True).bcrypt_rounds == 4


@pytest.mark.parametrize(
    "ttl",
    [pytest.param(901, id="over 15 minutes"), pytest.param(0, id="zero")],
)
def test_access_token_lifetime_must_be_within_15_minutes(ttl):
    with pytest.raises(ValidationError):
        Settings(access_token_ttl_seconds=ttl)


def test_idle_lifetime_cannot_exceed_the_absolute_one():
    with pytest.raises(ValidationError):
        Settings(refresh_idle_seconds=7200, refresh_absolute_seconds=3600)


def test_defaults_follow_the_contract(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert (settings.auth_host, settings.auth_port) == ("127.0.0.1", 5001)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    assert settings.keys_dir == tmp_path / "keys" / "auth"
    assert (settings.jwt_issuer, settings.jwt_audience) == ("shop-auth", "shop-api")
    assert settings.access_token_ttl_seconds == 900


def test_the_admin_password_is_kept_out_of_the_settings_repr():
    settings = Settings(admin_email="a@example.com", admin_password="very-secret-pw")
    assert "very-secret-pw" not in repr(settings)


def test_session_limits_default_to_14_days_idle_and_30_days_absolute():
    settings = Settings()
    assert settings.refresh_idle_seconds == 14 * 24 * 3600
    assert settings.refresh_absolute_seconds == 30 * 24 * 3600


def test_session_limits_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("REFRESH_IDLE_SECONDS", "600")
    monkeypatch.setenv("REFRESH_ABSOLUTE_SECONDS", "3600")
    settings = Settings()
    assert (settings.refresh_idle_seconds, settings.refresh_absolute_seconds) == (600, 3600)


def test_without_redis_url_there_is_no_redis():
    assert Settings().redis_url is None


def test_an_empty_redis_url_counts_as_unset(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "")
    assert Settings().redis_url is None


def test_redis_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:pw@cache:6380/2")
    monkeypatch.setenv("REVOCATION_REDIS_KEY", "staging:revoked-sessions")
    settings = Settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://:pw@cache:6380/2"
    assert settings.revocation_redis_key == "staging:revoked-sessions"
    assert settings.revocation_publish_seconds == 1.0
    assert "pw@" not in repr(settings)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://secret-host:6379", id="wrong scheme"),
        pytest.param("redis://:secret@host:port/0", id="port not a number"),
        pytest.param("localhost:6379", id="no scheme"),
    ],
)
def test_an_unusable_redis_url_is_refused_without_repeating_it(url):
    with pytest.raises(ValidationError) as caught:
        Settings(redis_url=url)
    # What `python -m auth_service` prints (it leaves the input out).
    (error,) = caught.value.errors(include_input=False, include_url=False)
    assert error["loc"] == ("redis_url",)
    assert "secret" not in str(error)


def test_revocations_are_kept_past_the_access_token_lifetime():
    settings = Settings(access_token_ttl_seconds=600)
    assert settings.revocation_retention_seconds > 600
