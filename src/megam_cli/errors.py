"""The gateway's errors in the CLI's words: what went wrong, then what to type next.

The gateway explains itself to any HTTP client (routes, JSON bodies, validation paths); here its
answers are recognised and the hint becomes a ``megam`` command or a rule in plain words.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from megam_cli.client import ApiError

FIELD_RULES: dict[str, str] = {
    "node_name": "a node name is lower-case letters, digits and hyphens, in labels of at most"
    " 63 characters separated by dots, e.g. web.example.com",
    "email": "an email address looks like you@example.com",
    "name": "a name starts with a letter or digit and has letters, digits, '.', '_' or '-',"
    " at most 64 characters",
    "predefcloud": "a cloud name starts with a letter or digit and has letters, digits, '.',"
    " '_' or '-', at most 64 characters",
    "run_list": "a run list is role[NAME] or recipe[COOKBOOK::RECIPE] items separated by commas",
    "noofinstances": "--count is a whole number from 1 up",
    "api_key": "an api key is the text 'megam accounts create' gave you",
}

_FIELD = re.compile(r"at `\$\.(\w+)")
_ROUTE = re.compile(r"\b(GET|POST|PUT|DELETE) /v1")


_HINTS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"no (?:live )?node named (\S+)"),
        lambda m: "'megam nodes list' shows your nodes",
    ),
    (
        re.compile(r"no predef cloud named (\S+)"),
        lambda m: f"add it with 'megam clouds add {m.group(1)} --provider local'"
        " ('megam clouds list' shows yours)",
    ),
    (re.compile(r"no job (\S+)"), lambda m: "'megam nodes show NODE' lists a node's jobs"),
    (
        re.compile(r"a node named (\S+) already exists"),
        lambda m: f"a node's name stays taken until it is deleted: pick another name, or "
        f"'megam nodes delete {m.group(1)} --follow' first",
    ),
    (
        re.compile(r"no account is registered for (\S+)"),
        lambda m: f"create it with 'megam accounts create {m.group(1)}', or sign in as someone"
        " else with 'megam login EMAIL'",
    ),
    (
        re.compile(r"signature does not match"),
        lambda m: "the api key is not this account's: 'megam login EMAIL' saves the right one"
        " (and check MEGAM_API_KEY, which wins over the saved profile)",
    ),
    (
        re.compile(r"only cluster operators"),
        lambda m: "operators are the emails in the gateway's MEGAM_ADMIN_EMAILS; with 'megam up',"
        " also every saved profile for it, the demo account, and 'megam up --operator EMAIL'"
        " (restart it after 'megam accounts create')",
    ),
    (
        re.compile(r"no herk node named"),
        lambda m: "'megam cluster status' lists the herk nodes",
    ),
    (
        re.compile(r"query parameter q is required"),
        lambda m: "give the words to look for, e.g. 'megam search error'",
    ),
    (
        re.compile(r"cannot reach the gateway at (\S+)"),
        lambda m: "is it running ('megam up')? The CLI talks to MEGAM_URL, else the profile's url",
    ),
]


def _hint_for(message: str) -> str | None:
    for pattern, hint in _HINTS:
        found = pattern.search(message)
        if found:
            return hint(found)
    return None


def explain(exc: ApiError) -> tuple[str, str]:
    """(what went wrong, the hint) for an error the gateway answered, in the CLI's words."""
    message = exc.message.replace("predef cloud", "cloud")
    field = _FIELD.search(exc.more or "")
    if field and field.group(1) in FIELD_RULES:
        return _invalid(message, field.group(1)), FIELD_RULES[field.group(1)]
    hint = _hint_for(exc.message)
    if hint is not None:
        return message, hint
    more = exc.more or ""
    if _ROUTE.search(more) or "regex" in more or "HMAC" in more:
        more = ""  # written for HTTP clients: nothing a CLI user types
    return message, more


def _invalid(message: str, field: str) -> str:
    shown = "--count" if field == "noofinstances" else field.replace("_", " ")
    if message.startswith("the body is not a valid"):
        return f"the {shown} is not valid"
    return message
