"""Secrets at rest: a column type that encrypts on write and decrypts on read.

Provider API keys are stored with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`)
under a key derived from the server's secret. The cipher belongs to the database engine
(`seal_with`), so two servers in one process — tests do this — never share keys. A value
written before encryption existed (no `fernet:` prefix) is read back as it is and sealed on
its next write.
"""

import base64
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

PREFIX = "fernet:"
_ATTRIBUTE = "tertulia_cipher"


def cipher_for(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tertulia sealed columns").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal_with(engine: AsyncEngine, secret: str) -> None:
    """Gives the engine the cipher its Sealed columns use."""
    setattr(engine.sync_engine.dialect, _ATTRIBUTE, cipher_for(secret))


def _cipher(dialect: Dialect) -> Fernet:
    cipher = getattr(dialect, _ATTRIBUTE, None)
    if cipher is None:
        raise RuntimeError("sealed columns used before the server secret was loaded")
    return cipher


class SealedUnreadable(Exception):
    """The value was sealed under another secret (TERTULIA_SECRET_KEY changed)."""


class Sealed(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return PREFIX + _cipher(dialect).encrypt(value.encode()).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or not str(value).startswith(PREFIX):
            return value
        try:
            return _cipher(dialect).decrypt(str(value)[len(PREFIX) :].encode()).decode()
        except InvalidToken as error:
            raise SealedUnreadable(
                "a stored secret cannot be decrypted: was TERTULIA_SECRET_KEY changed?"
            ) from error
