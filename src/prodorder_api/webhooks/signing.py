"""Standard Webhooks secrets and signatures (https://www.standardwebhooks.com/).

A secret is ``whsec_`` + base64 of 24–64 random bytes; the HMAC key is those bytes.
Each delivery is signed as ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
so the reference ``standardwebhooks`` libraries verify it unchanged.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Final

PREFIX: Final = "whsec_"
MIN_BYTES: Final = 24
MAX_BYTES: Final = 64
NEW_SECRET_BYTES: Final = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key of a well-formed secret; ``ValueError`` with the reason otherwise."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"must start with {PREFIX!r}")
    encoded = secret[len(PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"must be {PREFIX} followed by standard base64") from exc
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise ValueError(f"must encode {MIN_BYTES} to {MAX_BYTES} random bytes, not {len(key)}")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
