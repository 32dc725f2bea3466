"""The job types the catalogue (``actors/*.toml``) offers, as any service may read them.

Herk loads and checks the whole catalogue (``herk.catalogue``); the gateway needs only which job
types exist and which params schema each takes, to publish only what herk runs and to refuse bad
params as a 400 rather than let herk dead-letter them. Both read the same files, so a job type
is declared once; gateway and herk do not import each other, both import this kernel.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

from megam import env
from megam.config import _bundled_actors_dir
from megam.params import KnifeParams, NoParams, Params, RunListParams

WIRE_SCHEMAS: Final[dict[str, type[Params]]] = {
    "none": NoParams,
    "run_list": RunListParams,
    "knife": KnifeParams,
}
"""The params schemas of the wire contract (:mod:`megam.params`) by their catalogue name;
herk knows more of its own (``herk.params.SCHEMAS``), for types only AMQP producers send."""


_UNREADABLE: Final = (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, msgspec.ValidationError)


class JobTypeError(ValueError):
    """The catalogue cannot be read, or lacks what is asked of it."""


class JobType(msgspec.Struct, frozen=True):
    """The part of a catalogue entry every service may rely on (herk checks the rest)."""

    name: str
    description: str
    params: str = "none"


class JobTypes:
    def __init__(self, types: dict[str, JobType], source: Path) -> None:
        self._types = dict(types)
        self.source = source

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._types))

    def params_schema(self, name: str) -> type[Params]:
        """The wire schema of ``name``'s params; :class:`JobTypeError` if the catalogue has no
        such type or its params are not part of the wire contract."""
        found = self._types.get(name)
        if found is None:
            raise JobTypeError(f"the job catalogue {self.source} has no job type {name}")
        schema = WIRE_SCHEMAS.get(found.params)
        if schema is None:
            raise JobTypeError(f"job type {name} takes {found.params!r} params, not a wire schema")
        return schema


def read(directory: Path) -> JobTypes:
    """The job types of every ``*.toml`` in ``directory``."""
    types: dict[str, JobType] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            entry = msgspec.convert(raw, JobType)
        except _UNREADABLE as exc:
            raise JobTypeError(f"{path}: {exc}") from None
        types[entry.name] = entry
    if not types:
        raise JobTypeError(f"job catalogue {directory} has no *.toml job definitions")
    return JobTypes(types, directory)


@functools.cache
def bundled() -> JobTypes:
    """The catalogue named by ``MEGAM_ACTORS_DIR``, else the installed one (as ``Settings``)."""
    return read(Path(env.text("MEGAM_ACTORS_DIR") or _bundled_actors_dir()))
