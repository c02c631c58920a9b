import stat
import threading
from datetime import UTC, datetime, timedelta

import jwt

from auth_service.signing_keys import (
    KeyRing,
    create_key,
    ensure_key,
    key_ids,
    kid_created_at,
    new_kid,
    retired_kids,
    rotate_keys,
)

T0 = datetime(2026, 11, 25, 7, 15, 0, tzinfo=UTC)


def test_kids_sort_by_creation_time():
    kids = [new_kid(T0 + timedelta(microseconds=n)) for n in (3, 1, 2)]
    assert sorted(kids) == [kids[1], kids[2], kids[0]]
    assert kid_created_at(kids[1]) == T0 + timedelta(microseconds=1)


def test_files_that_are_not_keys_are_ignored(tmp_path):
    kid = create_key(tmp_path, T0)
    (tmp_path / "notes.pem").write_text("x")
    (tmp_path / f"{kid}.pem.bak").write_text("x")
    assert key_ids(tmp_path) == [kid]


def test_key_files_are_private(tmp_path):
    kid = create_key(tmp_path / "keys")
    mode = (tmp_path / "keys" / f"{kid}.pem").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_ensure_key_creates_the_first_key_only(tmp_path):
    first = ensure_key(tmp_path / "keys")
    assert first is not None
    assert ensure_key(tmp_path / "keys") is None
    assert key_ids(tmp_path / "keys") == [first]


def test_replicas_racing_on_an_empty_directory_create_one_key(tmp_path):
    directory = tmp_path / "keys"
    barrier = threading.Barrier(8)

    def start_replica():
        barrier.wait()
        ensure_key(directory)

    threads = [threading.Thread(target=start_replica) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(key_ids(directory)) == 1


def test_the_newest_key_signs_once_older_than_the_activation_delay(tmp_path):
    old = create_key(tmp_path, T0)
    new = create_key(tmp_path, T0 + timedelta(hours=1))
    now = T0 + timedelta(hours=1, seconds=10)
    ring = KeyRing(tmp_path, activation_seconds=20, clock=lambda: now)
    ring.reload()
    assert ring.signing_key().kid == old
    now = T0 + timedelta(hours=1, seconds=20)
    assert ring.signing_key().kid == new


def test_the_oldest_key_signs_while_every_key_is_new(tmp_path):
    first = create_key(tmp_path, T0)
    create_key(tmp_path, T0 + timedelta(seconds=1))
    ring = KeyRing(tmp_path, activation_seconds=20, clock=lambda: T0 + timedelta(seconds=2))
    ring.reload()
    assert ring.signing_key().kid == first


def test_jwks_publishes_every_key_and_no_private_part(tmp_path):
    kids = {create_key(tmp_path, T0), create_key(tmp_path, T0 + timedelta(seconds=1))}
    ring = KeyRing(tmp_path, activation_seconds=0)
    ring.reload()
    jwks = ring.jwks()
    assert {key["kid"] for key in jwks["keys"]} == kids
    for key in jwks["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )


def test_a_jwks_key_verifies_what_its_private_key_signed(tmp_path):
    create_key(tmp_path, T0)
    ring = KeyRing(tmp_path, activation_seconds=0)
    ring.reload()
    key = ring.signing_key()
    token = jwt.encode({"sub": "x"}, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
    public = jwt.PyJWK(ring.jwks()["keys"][0])
    assert jwt.decode(token, public.key, algorithms=["EdDSA"])["sub"] == "x"


def test_reload_picks_up_new_keys_and_drops_deleted_ones(tmp_path):
    old = create_key(tmp_path, T0)
    ring = KeyRing(tmp_path, activation_seconds=0)
    ring.reload()
    new = create_key(tmp_path, T0 + timedelta(seconds=1))
    (tmp_path / f"{old}.pem").unlink()
    ring.reload()
    assert [key.kid for key in ring.keys] == [new]


def test_reload_keeps_the_loaded_keys_when_the_directory_is_emptied(tmp_path):
    kid = create_key(tmp_path, T0)
    ring = KeyRing(tmp_path, activation_seconds=0)
    ring.reload()
    (tmp_path / f"{kid}.pem").unlink()
    ring.reload()
    assert [key.kid for key in ring.keys] == [kid]


def test_an_unreadable_key_file_is_skipped(tmp_path):
    good = create_key(tmp_path, T0)
    (tmp_path / f"{new_kid(T0 + timedelta(seconds=1))}.pem").write_text("not a key")
    ring = KeyRing(tmp_path, activation_seconds=0)
    ring.reload()
    assert [key.kid for key in ring.keys] == [good]


def test_keys_retire_only_after_their_successor_has_been_active_for_retain():
    kids = [new_kid(T0), new_kid(T0 + timedelta(hours=1)), new_kid(T0 + timedelta(hours=2))]
    now = T0 + timedelta(hours=2, minutes=10)
    assert retired_kids(kids, now=now, retain=timedelta(minutes=20)) == [kids[0]]
    assert retired_kids(kids, now=now, retain=timedelta(minutes=5)) == kids[:2]
    assert retired_kids(kids[-1:], now=now, retain=timedelta(0)) == []


def test_rotate_adds_a_key_and_prunes_long_superseded_ones(tmp_path):
    ancient = create_key(tmp_path, T0)
    recent = create_key(tmp_path, T0 + timedelta(days=1))
    now = T0 + timedelta(days=1, minutes=30)
    kid, pruned = rotate_keys(tmp_path, retain=timedelta(minutes=16), now=now)
    assert pruned == [ancient]
    assert key_ids(tmp_path) == [recent, kid]
