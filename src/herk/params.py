"""The params schemas a catalogue entry may name (``params = "knife"``), validated by herk.

The schemas of the job types the gateway publishes are the wire contract's (:mod:`megam.params`);
``converge`` is herk's own, for a job type only AMQP producers send. A request whose params do not
fit its type's schema is rejected to the dead-letter queue with the reason.
"""

from __future__ import annotations

from typing import Any, Final

from megam.params import (
    ChefRepo,
    KnifeParams,
    LocalPath,
    NoParams,
    Params,
    RunListItem,
    RunListParams,
    check,
)


class ConvergeParams(Params, frozen=True):
    """``chef.converge``: ``chef-client --local-mode`` in ``chef_repo``: a path on the herk host,
    a git repo herk checks out for the job (:class:`megam.params.ChefRepo`), or (absent) the
    node home."""

    run_list: list[RunListItem]
    chef_repo: LocalPath | ChefRepo | None = None


SCHEMAS: Final[dict[str, type[Params]]] = {
    "none": NoParams,
    "run_list": RunListParams,
    "knife": KnifeParams,
    "converge": ConvergeParams,
}


def validate(schema: str, params: dict[str, Any]) -> Params:
    """``params`` as the named schema, or :class:`megam.params.ParamsError` with the reason."""
    return check(SCHEMAS[schema], params, f"schema {schema!r}")


def field_names(schema: str) -> frozenset[str]:
    return frozenset(SCHEMAS[schema].__struct_fields__)
