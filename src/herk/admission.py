"""Admission: a delivery body becomes an accepted :class:`Job` or a :class:`Rejection`.

Everything that can be checked before a worker is involved is checked here, on the event loop:
the wire contract, the job type, the params schema and the sealed secrets. A rejection carries the
job's identity when the body still names one, so its record can end ``rejected`` too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import orjson

from herk import chef, params
from herk.catalogue import Catalogue, JobDefinition
from megam import wire
from megam.params import ParamsError
from megam.secrets import Sealer, SecretError


class Identity(msgspec.Struct, frozen=True):
    """The fields a ``rejected`` status event needs, recovered from an otherwise bad request."""

    job_id: wire.JobId
    node: wire.NodeName
    account: wire.AccountId
    type: wire.JobType
    correlation_id: wire.ShortText = ""
    attempt: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    request: wire.JobRequest
    definition: JobDefinition
    params: Any
    secrets: dict[str, str]

    @property
    def job_id(self) -> str:
        return self.request.job_id

    @property
    def identity(self) -> Identity:
        r = self.request
        return Identity(r.job_id, r.node, r.account, r.type, r.correlation_id, r.attempt)


class Rejection(Exception):
    def __init__(self, reason: str, identity: Identity | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.identity = identity


def admit(body: bytes, catalogue: Catalogue, sealer: Sealer) -> Job:
    try:
        request = wire.decode(body, wire.JobRequest)
    except wire.WireError as exc:
        raise Rejection(exc.reason, recover_identity(body)) from None
    identity = Identity(
        request.job_id,
        request.node,
        request.account,
        request.type,
        request.correlation_id,
        request.attempt,
    )
    definition = catalogue.get(request.type)
    if definition is None:
        raise Rejection(f"unknown job type {request.type!r}", identity)
    try:
        validated = params.validate(definition.params, request.params)
    except ParamsError as exc:
        raise Rejection(str(exc), identity) from None
    try:
        secrets = sealer.unseal(request.sealed) if request.sealed else {}
    except SecretError as exc:
        raise Rejection(str(exc), identity) from None
    problem = _credentials_problem(definition, validated, secrets)
    if problem:
        raise Rejection(problem, identity)
    return Job(request, definition, validated, secrets)


def _credentials_problem(
    definition: JobDefinition, validated: Any, secrets: dict[str, str]
) -> str | None:
    if definition.builder not in ("knife_create", "knife_delete"):
        return None
    problem = chef.knife_problem(validated, definition.builder.removeprefix("knife_"))
    if problem:
        return problem
    try:
        chef.KnifeConfig(validated.cloud.cctype, secrets)
    except chef.CredentialsError as exc:
        return str(exc)
    return None


def recover_identity(body: bytes) -> Identity | None:
    """The identity of a request that failed validation, if its body still names a valid one."""
    if len(body) > wire.MAX_MESSAGE_BYTES:
        return None
    try:
        raw = orjson.loads(body)
        if not isinstance(raw, dict):
            return None
        fields = {k: raw[k] for k in Identity.__struct_fields__ if k in raw}
        return msgspec.convert(fields, Identity, strict=True)
    except (orjson.JSONDecodeError, msgspec.ValidationError):
        return None
