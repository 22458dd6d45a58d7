"""The key ring: encryption bound to rows, rotation, sealing and digests."""

from __future__ import annotations

import pytest

from terapi_common.crypto import (
    DecryptionError,
    KeyRing,
    KeyRingError,
    connection_aad,
    generate_key,
    parse_key_ring,
)


def test_round_trip_returns_the_value() -> None:
    ring = KeyRing.from_spec(generate_key())
    blob = ring.encrypt_json({"api_key": "sk-1"}, aad="row-1")
    assert ring.decrypt_json(blob, aad="row-1") == {"api_key": "sk-1"}


def test_ciphertext_holds_no_plaintext() -> None:
    ring = KeyRing.from_spec(generate_key())
    assert b"sk-very-secret" not in ring.encrypt_json({"api_key": "sk-very-secret"}, aad="r")


def test_ciphertext_copied_to_another_row_fails_to_decrypt() -> None:
    ring = KeyRing.from_spec(generate_key())
    blob = ring.encrypt_json("secret", aad=connection_aad(1, "github", "alice"))
    with pytest.raises(DecryptionError):
        ring.decrypt_json(blob, aad=connection_aad(1, "github", "mallory"))


def test_tampered_ciphertext_fails_to_decrypt() -> None:
    ring = KeyRing.from_spec(generate_key())
    blob = bytearray(ring.encrypt_json("secret", aad="r"))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        ring.decrypt_json(bytes(blob), aad="r")


def test_rotated_ring_reads_old_rows_and_writes_with_newest_key() -> None:
    old_key, new_key = generate_key(), generate_key()
    old = KeyRing.from_spec(old_key)
    rotated = KeyRing.from_spec(f"1:{old_key},2:{new_key}")
    blob = old.encrypt_json("value", aad="r")
    assert rotated.decrypt_json(blob, aad="r") == "value"
    assert rotated.needs_reencryption(blob)
    assert not rotated.needs_reencryption(rotated.encrypt_json("value", aad="r"))


def test_ring_without_the_writing_key_cannot_read() -> None:
    first = KeyRing.from_spec(generate_key())
    with pytest.raises(DecryptionError):
        KeyRing.from_spec(generate_key()).decrypt_json(first.encrypt_json(1, aad="r"), aad="r")


def test_sealed_values_do_not_open_as_stored_rows() -> None:
    """Transit and storage use different subkeys, so one cannot be passed off as the other."""
    ring = KeyRing.from_spec(generate_key())
    sealed = ring.seal({"api_key": "x"}, aad="a")
    assert ring.unseal(sealed, aad="a") == {"api_key": "x"}
    import base64

    with pytest.raises(DecryptionError):
        ring.decrypt_json(base64.urlsafe_b64decode(sealed), aad="a")


def test_digest_depends_on_the_key() -> None:
    a, b = KeyRing.from_spec(generate_key()), KeyRing.from_spec(generate_key())
    assert a.digest("token", purpose="p") == a.digest("token", purpose="p")
    assert a.digest("token", purpose="p") != b.digest("token", purpose="p")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("not base64!", "not valid base64"),
        ("c2hvcnQ=", "must be 32 bytes"),
        ("", "empty"),
        ("0:" + "A" * 44, "whole numbers"),
    ],
)
def test_malformed_key_ring_is_refused(spec: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        parse_key_ring(spec)


def test_duplicate_key_version_is_refused() -> None:
    key = generate_key()
    with pytest.raises(KeyRingError, match="twice"):
        parse_key_ring(f"1:{key},1:{key}")
