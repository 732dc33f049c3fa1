"""Secrets the site must read back (TOTP seeds, SSO client secrets), encrypted at rest.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived from the site's
SECRET_KEY with HKDF, so a copy of the database alone does not give them away. Changing
SECRET_KEY makes them unreadable: members set up their authenticator again and brand admins
enter their SSO client secret again (README, "Configuration").
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(ValueError):
    """The stored secret was encrypted under another SECRET_KEY, or altered."""


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"community secretbox v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("sealed under another SECRET_KEY, or altered") from exc
