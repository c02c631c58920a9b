import unicodedata

import pytest

from auth_service import passwords
from auth_service.passwords import (
    MAX_NFKC_EXPANSION,
    MAX_RAW_LENGTH,
    PasswordHasher,
    new_password_problem,
    password_problem,
    prehash,
)

pytestmark = pytest.mark.anyio


def test_full_width_and_ascii_forms_prehash_alike():
    assert prehash("ｐａｓｓｗｏｒｄ１２") == prehash("password12")


def test_prehash_is_44_ascii_bytes_without_nul():
    digest = prehash("пароль-密码-🔑" * 20)
    assert len(digest) == 44
    assert digest.isascii()
    assert b"\x00" not in digest


def test_prehash_depends_on_characters_beyond_72_bytes():
    head = "a" * 80
    assert prehash(head + "x") != prehash(head + "y")


@pytest.mark.parametrize(
    ("password", "acceptable"),
    [
        pytest.param("a" * 7, False, id="7 characters"),
        pytest.param("a" * 8, True, id="8 characters"),
        pytest.param("a" * 128, True, id="128 characters"),
        pytest.param("a" * 129, False, id="129 characters"),
        pytest.param("🔑" * 8, True, id="8 four-byte characters"),
        pytest.param("\x00\x01\t\n\x7f\u200bab", True, id="control characters"),
    ],
)
def test_password_length_is_counted_in_code_points(password, acceptable):
    assert (password_problem(password) is None) is acceptable


def test_length_is_counted_after_nfkc():
    # U+FB03 (ﬃ) becomes "ffi": 3 characters become 9.
    assert password_problem(passwords.normalize("\ufb03" * 3)) is None
    assert password_problem(passwords.normalize("\ufb03" * 43)) is not None


async def test_verify_accepts_the_password_and_its_nfkc_twin():
    hasher = PasswordHasher(rounds=4)
    hashed = await hasher.hash("ｐａｓｓｗｏｒｄ１２")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("password12", hashed)
    assert not await hasher.verify("password13", hashed)


async def test_verify_rejects_a_long_password_whose_tail_differs():
    hasher = PasswordHasher(rounds=4)
    head = "é" * 40  # 80 bytes: bcrypt alone would only ever see these
    hashed = await hasher.hash(head + "tail-one")
    assert await hasher.verify(head + "tail-one", hashed)
    assert not await hasher.verify(head + "tail-two", hashed)


async def test_verify_without_a_hash_fails_after_checking_the_dummy():
    hasher = PasswordHasher(rounds=4)
    await hasher.prepare()
    assert not await hasher.verify("anything at all", None)


def test_no_character_expands_beyond_the_factor_the_raw_cap_assumes():
    # The raw cap (18 x 128) rejects no valid password only if no character's NFKC form
    # is longer than 18 code points; this Python's Unicode database is checked whole.
    longest = max(
        len(unicodedata.normalize("NFKC", chr(c)))
        for c in range(0x110000)
        if not 0xD800 <= c <= 0xDFFF
    )
    assert longest == MAX_NFKC_EXPANSION


async def test_the_longest_expansion_at_the_raw_cap_is_judged_by_its_nfkc_form():
    # 7 x U+FDFA is 126 characters after NFKC: a valid password of 7 raw characters.
    assert await new_password_problem("\ufdfa" * 7) is None
    assert await new_password_problem("\ufdfa" * 8) is not None  # 144 after NFKC
    # Text that NFKC leaves alone is judged by its own length, far over 128 at the cap.
    assert await new_password_problem("a" * MAX_RAW_LENGTH) is not None


@pytest.mark.parametrize(
    ("password", "acceptable"),
    [
        pytest.param("ｐａｓｓｗｏｒｄ１２", True, id="full-width, 10 after NFKC"),
        pytest.param("e\u0301" * 8, True, id="16 sent, 8 after NFKC"),
        pytest.param("e\u0301" * 7, False, id="14 sent, 7 after NFKC"),
        pytest.param("\ufb03" * 43, False, id="43 sent, 129 after NFKC"),
    ],
)
async def test_new_passwords_are_measured_after_nfkc(password, acceptable):
    assert (await new_password_problem(password) is None) is acceptable
