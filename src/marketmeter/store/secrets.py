"""Secrets at rest: the access keys' secret keys, the RegisterUsage signing keys and the
SNS signing key are stored encrypted (AES-256-GCM, `cryptography`) under a key the
database never holds.

The keys come from `MARKETMETER_SECRET_KEY` — one or more keys, comma-separated, each 32
bytes in URL-safe base64 (`marketmeter secrets generate` prints one) — or from the file
named by `MARKETMETER_SECRET_KEY_FILE` (the same text). The first key encrypts; every key
decrypts what was encrypted under it (each value names its key by a short id), which is
how a key is rotated without downtime (`marketmeter secrets rotate`, docs/operations.md).

A value is bound to its place — table, column and row — as GCM's associated data: moved
to another row or column, it no longer decrypts. Without any key, values are stored as
they are (the embedded demo keeps working; `serve` warns once), and plain values already
stored are read as they are, with a key or without.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from marketmeter.domain.ports import StoreUnavailable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VARIABLE = "MARKETMETER_SECRET_KEY"
KEY_FILE_VARIABLE = "MARKETMETER_SECRET_KEY_FILE"
PREFIX = "mmenc1:"
"""What an encrypted value starts with: `mmenc1:<key id>:<nonce and ciphertext, base64>`."""


class SecretKeyError(StoreUnavailable):
    """The configured key is not usable: one line that says why."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"marketmeter secret key id\0" + key).hexdigest()[:8]


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SecretKeyError(
            "a secret key is 32 bytes in URL-safe base64 (44 characters): "
            "`marketmeter secrets generate` prints one"
        )
    return key


def _cipher(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # (with a key only)

    return AESGCM(key)


class Secrets:
    """Encrypts and decrypts the stored secrets with the configured keys."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        decoded = [_decode_key(k) for k in keys if k.strip()]
        self._by_id = {key_id(k): _cipher(k) for k in decoded}
        self.current = key_id(decoded[0]) if decoded else None
        """The id of the key that encrypts; None: values are stored as they are."""

    @property
    def key_ids(self) -> list[str]:
        return list(self._by_id)

    def seal(self, value: str, place: str) -> str:
        if self.current is None:
            return value
        nonce = os.urandom(12)
        sealed = self._by_id[self.current].encrypt(nonce, value.encode(), place.encode())
        return f"{PREFIX}{self.current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, place: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # stored before a key was configured
        from cryptography.exceptions import InvalidTag

        kid, _, data = stored[len(PREFIX) :].partition(":")
        box = self._by_id.get(kid)
        if box is None:
            raise StoreUnavailable(
                f"a secret in the database is encrypted under key {kid}, which is not among "
                f"the configured keys ({', '.join(self._by_id) or 'none'}): set "
                f"{KEY_VARIABLE} (or {KEY_FILE_VARIABLE}) to include it"
            )
        raw = base64.urlsafe_b64decode(data.encode())
        try:
            return box.decrypt(raw[:12], raw[12:], place.encode()).decode()
        except InvalidTag:
            raise StoreUnavailable(
                f"the secret of {place} does not decrypt: changed, or moved from another row"
            ) from None

    def needs_sealing(self, stored: str) -> bool:
        """Whether `stored` is plain, or under a key other than the current one."""
        if self.current is None:
            return False
        return not stored.startswith(f"{PREFIX}{self.current}:")


def keys_from_environment() -> list[str]:
    text = os.environ.get(KEY_VARIABLE, "")
    path = os.environ.get(KEY_FILE_VARIABLE, "")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SecretKeyError(f"{KEY_FILE_VARIABLE}: cannot read {path}: {exc}") from None
    return [k for k in text.replace("\n", ",").split(",") if k.strip()]


@cache
def configured() -> Secrets:
    """This process's keys, read once from the environment."""
    return Secrets(keys_from_environment())


def place(table: str, column: str, row: str) -> str:
    """The associated data that binds a value to its place."""
    return f"{table}.{column}:{row}"
