"""Secrets on the wire and at rest: sealed with Fernet under the cluster's secret key.

The key lives in a file (mode 0600) named by ``MEGAM_SECRET_KEY_FILE``; every process that must
read sealed fields (gateway and herk) is given the same file. Values are also masked out of any
text that leaves a process (log lines, events).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken

MASK = "****"


class SecretError(ValueError):
    pass


def load_or_create_key(path: Path) -> bytes:
    """Read the cluster key, creating it (0600) the first time.

    Processes that start together agree on one key: it is written to a private file that is then
    linked into place, which fails if another process linked its own first (then that one is read).
    """
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    try:
        os.link(draft, path)
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        draft.unlink()
    return key


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secrets: Mapping[str, str]) -> str:
        return self._fernet.encrypt(orjson.dumps(dict(secrets))).decode()

    def unseal(self, token: str) -> dict[str, str]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, orjson.JSONDecodeError):
            raise SecretError("sealed secrets cannot be opened with this node's key") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise SecretError("sealed secrets must be a JSON object of strings")
        return value

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError("value cannot be decrypted with this node's key") from None


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a secret value (4 characters or longer) with ``****``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text
