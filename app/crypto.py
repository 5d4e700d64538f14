"""Secrets at rest: pgcrypto ciphertext made and read by the encrypt/decrypt_api_key functions."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from app.config import get_settings


def encrypt(session: Session, plain: str) -> bytes:
    key = get_settings().encryption_key.get_secret_value()
    return bytes(session.execute(select(func.encrypt_api_key(plain, key))).scalar_one())


def decrypt(session: Session, ciphertext: bytes | None) -> str | None:
    """The plain secret, through the seed's decrypt_api_key RPC; None when none is stored."""
    if ciphertext is None:
        return None
    key = get_settings().encryption_key.get_secret_value()
    return session.scalar(select(func.decrypt_api_key(ciphertext, key)))


def decrypted(column: QueryableAttribute[bytes | None]) -> ColumnElement[str | None]:
    """`column` decrypted in SQL by decrypt_api_key, for reading many secrets in one query."""
    key = get_settings().encryption_key.get_secret_value()
    return func.decrypt_api_key(column, key)
