"""Ed25519 key files: created once (atomically, so replicas may race), then only read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_exclusive(path: Path, content: bytes, mode: int = 0o600) -> bool:
    """Write the file unless it exists; True when this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.write(fd, content)
        os.fchmod(fd, mode)
        os.close(fd)
        os.link(tmp, path)  # fails if another process got there first
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def ensure_ed25519_keypair(private_path: Path, public_path: Path) -> None:
    """Create the key pair on first start; keep whatever is already there."""
    if not private_path.exists():
        write_exclusive(private_path, private_pem(Ed25519PrivateKey.generate()))
    if not public_path.exists():
        key = load_private_key(private_path)
        write_exclusive(public_path, public_pem(key.public_key()), mode=0o644)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def main(argv: list[str] | None = None) -> None:
    """`python -m shop_common.keys PRIVATE_PEM PUBLIC_PEM`: create the pair if absent."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m shop_common.keys PRIVATE_PEM PUBLIC_PEM")
    ensure_ed25519_keypair(Path(args[0]), Path(args[1]))


if __name__ == "__main__":
    main()
