from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shop_common.keys import (
    ensure_ed25519_keypair,
    load_private_key,
    load_public_key,
    write_exclusive,
)


def test_write_exclusive_lets_exactly_one_racer_win(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda i: write_exclusive(target, f"{i}".encode()), range(16)))
    assert wins.count(True) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_a_keypair_is_created_once_and_then_kept(tmp_path: Path) -> None:
    private, public = tmp_path / "k" / "private.pem", tmp_path / "k" / "public.pem"
    ensure_ed25519_keypair(private, public)
    first = private.read_bytes()
    ensure_ed25519_keypair(private, public)
    assert private.read_bytes() == first
    assert load_private_key(private).public_key() == load_public_key(public)
    assert private.stat().st_mode & 0o077 == 0
