import pytest
from pydantic import ValidationError

from auth_service.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("BCRYPT_ROUNDS", "SHOP_TESTING", "ACCESS_TOKEN_TTL_SECONDS", "DATA_DIR"):
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
