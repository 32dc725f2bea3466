"""Secret values chosen to break masking and escaping, and an independent search for their traces.

The search does not use megam.secrets: it spells out on its own every form a secret may take in
what the project writes (raw, inside a single-quoted Ruby literal, inside a JSON string, and each
line of a multi-line secret), so a form the mask forgot is found.
"""

from __future__ import annotations

import json
from pathlib import Path

HOSTILE = {
    "quotes": "AKIA'single'and\"double\"KEY",
    "backslashes": "wJalr\\XUtn\\\\FEMI\\'K7MDENG",
    "unicode": "clé-ünïcødé-密钥-🔑-sekret",
    "newlines": "first-secret-line\nsecond-secret-line\r\nthird-secret-line",
    "substring_of_output": "Bootstrapping",  # the fake knife prints "Bootstrapping Chef on …"
}
"""One hostile value per kind, each usable as an ``aws_secret_access_key``."""

GOOGLE_JSON = (
    '{\n  "type": "service_account",\n  "project_id": "megam-hostile",\n'
    '  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
    '-----END PRIVATE KEY-----\\n",\n  "client_email": "herk@megam-hostile.iam.example"\n}\n'
)
"""A multi-line secret as google_json really is: a service account key file."""

PLAIN_ACCESS_KEY = "AKIAPLAINACCESS42"


def traces(secret: str) -> set[str]:
    """Every string whose presence would show ``secret`` in clear."""
    ruby = secret.replace("\\", "\\\\").replace("'", "\\'")
    forms = {secret, ruby, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    lines = {line.strip() for form in forms for line in form.replace("\r", "\n").split("\n")}
    return {trace for trace in forms | lines if len(trace) >= 4}


def found_in(text: str, secrets: list[str]) -> list[str]:
    return sorted({trace for secret in secrets for trace in traces(secret) if trace in text})


def found_in_files(root: Path, secrets: list[str]) -> dict[str, list[str]]:
    """Each file under ``root`` holding a trace of a secret, with the traces found."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                text = path.read_bytes().decode("utf-8", errors="replace")
            except OSError:
                continue
            hits = found_in(text, secrets)
            if hits:
                found[str(path)] = hits
    return found
