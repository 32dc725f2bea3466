"""The job catalogue: one TOML file per job type in ``actors/``, loaded and checked at start.

The catalogue is data, not code. Each entry says what the job runs (an argv template or a named
builder), what params it accepts, whether it is safe to run twice, how long it may take and how it
is retried. A bad file stops herk at start with the file name and the reason, never mid-job.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from herk import params

BUILDERS: Final = frozenset({"knife_create", "knife_delete", "chef_converge", "noop"})
"""Named argv builders (``herk.plans``) for jobs an argv template cannot express."""

CONTEXT_PLACEHOLDERS: Final = frozenset(
    {"python", "node", "account", "job_id", "attempt", "data_dir", "node_home"}
)
"""Placeholders every argv template may use, besides the fields of its params schema."""

Seconds = Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 3600)]
RetryableState = Literal["failed", "timed_out", "interrupted"]


class CatalogueError(ValueError):
    """A catalogue file is missing, unreadable or inconsistent."""


class RetryPolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    backoff: Seconds = 1.0
    """Delay before the second attempt; it doubles for each further attempt, with jitter."""
    backoff_max: Seconds = 300.0
    retry_on: tuple[RetryableState, ...] = ("failed", "timed_out")


class JobDefinition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$(?!\n)")]
    description: str
    idempotent: bool
    timeout: Seconds
    params: str = "none"
    argv: tuple[str, ...] | None = None
    builder: str | None = None
    kill_grace: Seconds = 10.0
    """Seconds between SIGTERM and SIGKILL when the job is timed out or cancelled."""
    retry: RetryPolicy = RetryPolicy()

    @property
    def runs_subprocess(self) -> bool:
        return self.builder != "noop"


class Catalogue:
    def __init__(self, definitions: dict[str, JobDefinition], source: Path | None = None) -> None:
        self._definitions = dict(definitions)
        self.source = source

    def get(self, job_type: str) -> JobDefinition | None:
        return self._definitions.get(job_type)

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._definitions

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._definitions))

    def __len__(self) -> int:
        return len(self._definitions)


def load_catalogue(directory: Path) -> Catalogue:
    """Every ``*.toml`` in ``directory``, checked: a bad one raises :class:`CatalogueError`."""
    if not directory.is_dir():
        raise CatalogueError(f"job catalogue directory {directory} does not exist")
    definitions: dict[str, JobDefinition] = {}
    for path in sorted(directory.glob("*.toml")):
        definition = load_definition(path)
        definitions[definition.name] = definition
    if not definitions:
        raise CatalogueError(f"job catalogue {directory} has no *.toml job definitions")
    return Catalogue(definitions, directory)


def load_definition(path: Path) -> JobDefinition:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: invalid TOML: {exc}") from None
    try:
        definition = msgspec.convert(raw, JobDefinition, strict=True)
    except msgspec.ValidationError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    problem = _inconsistency(definition, path)
    if problem:
        raise CatalogueError(f"{path}: {problem}")
    return definition


def _inconsistency(definition: JobDefinition, path: Path) -> str | None:
    if path.stem != definition.name:
        return f"name {definition.name!r} does not match the file name {path.name!r}"
    if definition.params not in params.SCHEMAS:
        known = sorted(params.SCHEMAS)
        return f"unknown params schema {definition.params!r}, expected one of {known}"
    if (definition.argv is None) == (definition.builder is None):
        return "give exactly one of 'argv' (a template) or 'builder' (a named argv builder)"
    if definition.builder is not None and definition.builder not in BUILDERS:
        return f"unknown builder {definition.builder!r}, expected one of {sorted(BUILDERS)}"
    if definition.argv is not None:
        problem = _template_problem(definition.argv, definition.params)
        if problem:
            return problem
    if not definition.idempotent and definition.retry.max_attempts > 1:
        return "a job that is not idempotent must not be retried (retry.max_attempts must be 1)"
    if definition.retry.backoff > definition.retry.backoff_max:
        return "retry.backoff must not exceed retry.backoff_max"
    return None


def _template_problem(argv: tuple[str, ...], schema: str) -> str | None:
    if not argv or not argv[0]:
        return "argv must name a program"
    allowed = CONTEXT_PLACEHOLDERS | params.field_names(schema)
    for element in argv:
        try:
            fields = [f for _, f, spec, conv in string.Formatter().parse(element) if f is not None]
            specs = [(spec, conv) for _, f, spec, conv in string.Formatter().parse(element) if f]
        except ValueError as exc:
            return f"argv element {element!r}: {exc}"
        for field in fields:
            if field not in allowed:
                return (
                    f"argv element {element!r}: unknown placeholder {{{field}}}, "
                    f"allowed {sorted(allowed)}"
                )
        if any(spec or conv for spec, conv in specs):
            return f"argv element {element!r}: placeholders take no format spec or conversion"
    return None
