"""Secrets on the wire and at rest: sealed with Fernet under the cluster's secret key.

The key lives in a file (mode 0600) named by ``MEGAM_SECRET_KEY_FILE``; every process that must
read sealed fields (gateway and herk) is given the same file. Values are also masked out of any
text that leaves a process (log lines, events).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import orjson
from cryptography.fernet import Fernet, InvalidToken

MASK: Final = "****"


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


MIN_SECRET_LENGTH: Final = 4
"""Shorter values (and shorter lines of a multi-line value) are not masked: they would blank out
ordinary words, and leak next to nothing."""
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def written_forms(value: str) -> set[str]:
    """Every form in which the project itself writes ``value``: raw, inside a single-quoted Ruby
    literal (the knife config), and inside a JSON string (events, the wire, the store), both as
    orjson writes it and with non-ASCII escaped as ``\\uXXXX``."""
    forms = {value, ruby_single_quoted_body(value), json.dumps(value)[1:-1]}
    with contextlib.suppress(orjson.JSONEncodeError):  # a lone surrogate: orjson never writes it
        forms.add(orjson.dumps(value).decode()[1:-1])
    return forms


def ruby_single_quoted_body(value: str) -> str:
    """``value`` as it stands between the quotes of a single-quoted Ruby literal: only backslash
    and quote are special there."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def maskable_pieces(value: str) -> set[str]:
    """The substrings to mask for ``value``: each written form, and for a multi-line form each of
    its lines (stripped), since output reaches the mask one line at a time."""
    pieces: set[str] = set()
    for form in written_forms(value):
        pieces.add(form)
        lines = _LINE_BREAK.split(form)
        if len(lines) > 1:
            pieces.update(line.strip() for line in lines)
    return {piece for piece in pieces if len(piece) >= MIN_SECRET_LENGTH}


class Masker:
    """Masks a fixed set of secret values out of text, in every form :func:`maskable_pieces`
    lists; longer pieces first, so a secret containing another is masked whole."""

    def __init__(self, secrets: Iterable[str]) -> None:
        pieces = set().union(*(maskable_pieces(secret) for secret in secrets))
        ordered = sorted(pieces, key=lambda piece: (-len(piece), piece))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a secret value, in any form the project writes it, with
    ``****``."""
    return Masker(secrets)(text)

