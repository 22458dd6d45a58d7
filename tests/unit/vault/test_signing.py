"""Webhook signatures must verify with the Standard Webhooks reference library."""

from __future__ import annotations

import base64
import time

from standardwebhooks import Webhook

from terapi_vault.signing import new_webhook_secret, sign_webhook


def test_new_secret_has_the_standard_shape() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24


def test_signature_verifies_with_the_reference_library() -> None:
    secret, payload, now = new_webhook_secret(), '{"a":1}', int(time.time())
    signature = sign_webhook(secret, webhook_id="msg_1", timestamp=now, payload=payload)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert Webhook(secret).verify(payload, headers) == {"a": 1}


def test_signature_matches_the_reference_library_byte_for_byte() -> None:
    from datetime import UTC, datetime

    secret, now = new_webhook_secret(), int(time.time())
    expected = Webhook(secret).sign("msg_2", datetime.fromtimestamp(now, tz=UTC), "{}")
    assert sign_webhook(secret, webhook_id="msg_2", timestamp=now, payload="{}") == expected
