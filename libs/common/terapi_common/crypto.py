"""AES-256-GCM with a versioned key ring, transit sealing and keyed digests.

Every ciphertext starts with the version of the key that made it, so keys rotate by
adding a newer version: the active one (the newest unless told otherwise) encrypts, all
listed versions decrypt. Digests are stored under the active version and looked up under
every listed one. Storage, transit
and digests use separate subkeys derived with HKDF, so a value sealed for the bus can
never be pasted into a table, and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """The ciphertext was altered, moved to another row, or made with an unknown key."""


class KeyRingError(ValueError):
    """The configured key ring is malformed."""


def generate_key() -> str:
    """A fresh base64 AES-256 key, as `TERAPI_ENCRYPTION_KEY` expects."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
        master
    )


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError("encryption key is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise KeyRingError(f"encryption key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def parse_key_ring(spec: str) -> dict[int, bytes]:
    """Read `"<base64>"` or `"1:<base64>,2:<base64>"` into {version: key}."""
    ring: dict[int, bytes] = {}
    for part in (p for p in spec.split(",") if p.strip()):
        version_text, sep, key_text = part.strip().partition(":")
        if not sep:
            version_text, key_text = "1", version_text
        if not version_text.isdigit() or not 1 <= int(version_text) <= 255:
            raise KeyRingError("key versions must be whole numbers from 1 to 255")
        if int(version_text) in ring:
            raise KeyRingError(f"key version {version_text} is listed twice")
        ring[int(version_text)] = _decode_key(key_text)
    if not ring:
        raise KeyRingError("the key ring is empty")
    return ring


class _Cipher:
    """AES-GCM over one purpose's subkeys, version byte first."""

    def __init__(self, ring: dict[int, bytes], purpose: bytes, current: int) -> None:
        self._keys = {v: AESGCM(_derive(k, purpose)) for v, k in ring.items()}
        self._current = current

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, aad)
        return bytes([self._current]) + nonce + sealed

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + 16:
            raise DecryptionError("ciphertext too short")
        key = self._keys.get(blob[0])
        if key is None:
            raise DecryptionError(f"no key with version {blob[0]} in the key ring")
        try:
            return key.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not verify") from exc

    def version_of(self, blob: bytes) -> int:
        return blob[0]

    @property
    def current_version(self) -> int:
        return self._current


class KeyRing:
    """Encrypts rows at rest, seals values for the bus and makes keyed digests."""

    def __init__(self, ring: dict[int, bytes], *, active: int | None = None) -> None:
        # `active` (default: the highest version) encrypts and makes stored digests. A new
        # version is first listed with the old one still active, so that every replica can
        # read it before any replica writes with it.
        current = max(ring) if active is None else active
        if current not in ring:
            raise KeyRingError(f"the active key version {current} is not in the key ring")
        self._storage = _Cipher(ring, b"terapi/storage/v1", current)
        self._transit = _Cipher(ring, b"terapi/transit/v1", current)
        order = [current, *sorted((v for v in ring if v != current), reverse=True)]
        self._digest_keys = tuple(_derive(ring[v], b"terapi/digest/v1") for v in order)

    @classmethod
    def from_spec(cls, spec: str, *, active: int | None = None) -> KeyRing:
        return cls(parse_key_ring(spec), active=active)

    # -- at rest: the AAD binds a ciphertext to its row (environment, table, id)

    def encrypt_json(self, value: Any, *, aad: str) -> bytes:
        return self._storage.encrypt(orjson.dumps(value), aad.encode())

    def decrypt_json(self, blob: bytes, *, aad: str) -> Any:
        return orjson.loads(self._storage.decrypt(bytes(blob), aad.encode()))

    def needs_reencryption(self, blob: bytes) -> bool:
        """True when the row was written with a key version other than the active one."""
        return self._storage.version_of(bytes(blob)) != self._storage.current_version

    def reencrypt(self, blob: bytes, *, aad: str) -> bytes:
        """The same value encrypted with the active key; `blob` itself if it already is.

        Raises DecryptionError when no listed key opens it, whatever its version."""
        plaintext = self._storage.decrypt(bytes(blob), aad.encode())
        if not self.needs_reencryption(blob):
            return bytes(blob)
        return self._storage.encrypt(plaintext, aad.encode())

    @property
    def current_version(self) -> int:
        """The version that encrypts: the active one."""
        return self._storage.current_version

    # -- in transit: sealed fields of bus messages

    def seal(self, value: Any, *, aad: str) -> str:
        blob = self._transit.encrypt(orjson.dumps(value), aad.encode())
        return base64.urlsafe_b64encode(blob).decode()

    def unseal(self, sealed: str, *, aad: str) -> Any:
        try:
            blob = base64.urlsafe_b64decode(sealed.encode())
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("sealed value is not base64") from exc
        return orjson.loads(self._transit.decrypt(blob, aad.encode()))

    # -- digests for lookups of high-entropy tokens

    def digest(self, value: str, *, purpose: str) -> str:
        """A keyed HMAC-SHA256 of a token under the active version: the one to store.

        Keyed, so a leaked table cannot be checked offline."""
        return _hmac_hex(self._digest_keys[0], value, purpose)

    def digests(self, value: str, *, purpose: str) -> tuple[str, ...]:
        """The digest under every listed version, the active first: the ones to look up by.

        A row stored before a newer version was added keeps its older digest until it
        expires, so a lookup by the active one alone would lose it."""
        return tuple(_hmac_hex(key, value, purpose) for key in self._digest_keys)


def _hmac_hex(key: bytes, value: str, purpose: str) -> str:
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def sha256_hex(value: str) -> str:
    """Plain SHA-256, for secret keys that other services look up without the key ring."""
    return hashlib.sha256(value.encode()).hexdigest()


def random_token(prefix: str, nbytes: int = 32) -> str:
    """A URL-safe random token with a readable prefix (`sk_…`, `cst_…`)."""
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def integration_aad(environment_id: int, integration_id: str) -> str:
    """Associated data binding an integration's OAuth client to its row, at rest and in
    transit."""
    return f"integration:{environment_id}:{integration_id}"


def connection_aad(environment_id: int, integration_id: str, connection_id: str) -> str:
    """Associated data binding credentials to one connection, at rest and in transit."""
    return f"connection:{environment_id}:{integration_id}:{connection_id}"
