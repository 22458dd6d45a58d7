"""Adding a key version: lookups by digest keep working, old rows move to the newest key."""

from __future__ import annotations

import pytest

from terapi_common.crypto import DecryptionError, KeyRing, KeyRingError, generate_key

OLD, NEW = generate_key(), generate_key()


def test_digests_cover_every_listed_version_newest_first() -> None:
    rotated = KeyRing.from_spec(f"1:{OLD},2:{NEW}")
    digests = rotated.digests("cst_token", purpose="p")
    assert digests == (
        KeyRing.from_spec(f"2:{NEW}").digest("cst_token", purpose="p"),
        KeyRing.from_spec(f"1:{OLD}").digest("cst_token", purpose="p"),
    )
    assert rotated.digest("cst_token", purpose="p") == digests[0]


def test_digest_stored_under_version_one_is_found_after_version_two_is_added() -> None:
    stored = KeyRing.from_spec(f"1:{OLD}").digest("cst_token", purpose="p")
    assert stored in KeyRing.from_spec(f"1:{OLD},2:{NEW}").digests("cst_token", purpose="p")
    assert stored != KeyRing.from_spec(f"1:{OLD},2:{NEW}").digest("cst_token", purpose="p")


def test_digests_of_a_single_key_ring_are_its_digest() -> None:
    ring = KeyRing.from_spec(OLD)
    assert ring.digests("t", purpose="p") == (ring.digest("t", purpose="p"),)


def test_digests_keep_purposes_apart() -> None:
    rotated = KeyRing.from_spec(f"1:{OLD},2:{NEW}")
    assert set(rotated.digests("t", purpose="a")).isdisjoint(rotated.digests("t", purpose="b"))


def test_reencrypt_moves_an_old_row_to_the_newest_key() -> None:
    blob = KeyRing.from_spec(f"1:{OLD}").encrypt_json({"api_key": "k"}, aad="r")
    moved = KeyRing.from_spec(f"1:{OLD},2:{NEW}").reencrypt(blob, aad="r")
    assert moved[0] == 2
    assert KeyRing.from_spec(f"2:{NEW}").decrypt_json(moved, aad="r") == {"api_key": "k"}


def test_reencrypt_leaves_a_current_row_as_it_is() -> None:
    rotated = KeyRing.from_spec(f"1:{OLD},2:{NEW}")
    blob = rotated.encrypt_json("v", aad="r")
    assert rotated.reencrypt(blob, aad="r") == blob


@pytest.mark.parametrize("writer", [f"1:{generate_key()}", f"2:{generate_key()}"])
def test_reencrypt_refuses_a_row_no_listed_key_opens(writer: str) -> None:
    """Old version or current one: a row that does not verify is reported, never rewritten."""
    blob = KeyRing.from_spec(writer).encrypt_json("v", aad="r")
    with pytest.raises(DecryptionError):
        KeyRing.from_spec(f"1:{OLD},2:{NEW}").reencrypt(blob, aad="r")


def test_current_version_is_the_highest_listed() -> None:
    assert KeyRing.from_spec(f"2:{NEW},1:{OLD}").current_version == 2


def test_a_listed_but_inactive_version_decrypts_without_encrypting() -> None:
    """Stage one of a rotation: every replica learns version 2 while version 1 still writes,
    so nothing a replica writes is unreadable to one that has not restarted yet."""
    staged = KeyRing.from_spec(f"1:{OLD},2:{NEW}", active=1)
    assert staged.encrypt_json("v", aad="r")[0] == 1
    assert staged.seal("v", aad="r") and KeyRing.from_spec(OLD).unseal(
        staged.seal("v", aad="r"), aad="r") == "v"
    written_by_v2 = KeyRing.from_spec(f"1:{OLD},2:{NEW}").encrypt_json("w", aad="r")
    assert staged.decrypt_json(written_by_v2, aad="r") == "w"
    assert staged.digest("t", purpose="p") == KeyRing.from_spec(OLD).digest("t", purpose="p")
    assert staged.digests("t", purpose="p")[1] == KeyRing.from_spec(
        f"2:{NEW}").digest("t", purpose="p")


def test_an_active_version_missing_from_the_ring_is_refused() -> None:
    with pytest.raises(KeyRingError, match="active key version 3"):
        KeyRing.from_spec(f"1:{OLD},2:{NEW}", active=3)
