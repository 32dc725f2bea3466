"""The OpenAPI 3.1 document of the API, built from the app's own routes and request schemas.

Every route must have an entry in :data:`OPERATIONS` (building the document fails otherwise), and
request bodies are described by the same msgspec Structs that validate them, so the document
cannot drift from what the gateway does.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

import msgspec
from aiohttp import web

from gateway import auth, schemas
from megam import __version__, hmac

REF: Final = "#/components/schemas/{name}"


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    name: str
    description: str
    type: str = "string"


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    answer: str
    """What a success returns, e.g. ``Megam::Node`` or ``201 messages``."""
    body: tuple[type[msgspec.Struct], ...] = ()
    query: tuple[Query, ...] = ()
    status: int = 200
    media_type: str = "application/json"


TAIL = Query("tail", "how many of the latest lines to give first (default 100)", "integer")
AFTER = Query("after", "a cursor: give only lines after it", "integer")
JOB = Query("job", "only the lines of this job (RIP…)")
CREATED = "201 messages: [{code, msg_type, msg, more, json_claz, links}]"


def created(summary: str, *body: type[msgspec.Struct]) -> Operation:
    """A ``…/content`` or ``…/update`` write: a body in, Megam's 201 messages out."""
    return Operation(summary, CREATED, body=body, status=201)


OPERATIONS: Final[dict[tuple[str, str], Operation]] = {
    ("POST", "/v1/accounts/content"): Operation(
        "Onboard an account; the api_key is generated unless given, and returned",
        "Megam::Account",
        body=(schemas.AccountInput,),
        status=201,
    ),
    ("GET", "/v1/accounts/{email}"): Operation("Your own account", "Megam::Account"),
    ("POST", "/v1/auth"): Operation("Check a signature", "Megam::Auth"),
    ("GET", "/v1/predefs"): Operation("The seeded app types", "Megam::PredefCollection"),
    ("GET", "/v1/predefs/{name}"): Operation("One app type", "Megam::Predef"),
    ("GET", "/v1/cloudtools"): Operation("The seeded cloud tools", "Megam::CloudToolCollection"),
    ("GET", "/v1/cloudtools/{name}"): Operation(
        "One cloud tool and its command templates", "Megam::CloudTool"
    ),
    ("POST", "/v1/predefclouds/content"): created(
        "Create a cloud profile; credentials are encrypted and never returned",
        schemas.PredefCloudInput,
    ),
    ("GET", "/v1/predefclouds"): Operation("Your cloud profiles", "Megam::PredefCloudCollection"),
    ("GET", "/v1/predefclouds/{name}"): Operation("One cloud profile", "Megam::PredefCloud"),
    ("POST", "/v1/nodes/content"): created(
        "Launch nodes: Megam's node JSON or the short form; noofinstances fans out",
        schemas.NodeLaunch,
        schemas.NodeCreate,
    ),
    ("GET", "/v1/nodes"): Operation("Your nodes", "Megam::NodeCollection"),
    ("GET", "/v1/nodes/{name}"): Operation(
        "One node with its status and latest request",
        "Megam::NodeCollection of one, with the node's fields also at the top level",
    ),
    ("GET", "/v1/nodes/{name}/logs"): Operation(
        "A node's log lines: the last N, or those after a cursor",
        "Megam::LogLineCollection with cursor",
        query=(TAIL, AFTER, JOB, Query("limit", "at most this many lines", "integer")),
    ),
    ("GET", "/v1/nodes/{name}/logs/stream"): Operation(
        "Live tail as Server-Sent Events: the last N lines, then follow; every event's id is "
        "a cursor, resume with Last-Event-ID; 'status' events report node and job states",
        "text/event-stream",
        query=(TAIL, AFTER, JOB),
        media_type="text/event-stream",
    ),
    ("GET", "/v1/nodes/{name}/logs/ws"): Operation(
        "Live tail over a WebSocket: JSON messages {type: line|status, cursor, line|status}; "
        "resume with ?after=<cursor>",
        "101 WebSocket",
        query=(TAIL, AFTER, JOB),
        status=101,
    ),
    ("GET", "/v1/nodes/{name}/metrics"): Operation(
        "A node's metric series: raw samples, or 5-minute or hourly points (mean, low, high)",
        "Megam::MetricSampleCollection (points with step; rolled-up ones with low, high, count)",
        query=(
            Query("name", "only this metric, e.g. cpu_system"),
            Query("since", "seconds since the epoch", "number"),
            Query("step", "auto (default), raw, 300 or 3600: the resolution"),
            Query("limit", "at most this many points, newest kept (default 1000)", "integer"),
        ),
    ),
    ("POST", "/v1/requests/content"): created(
        "A request for an existing node: delete", schemas.RequestInput
    ),
    ("GET", "/v1/requests"): Operation(
        "All your requests with state, reason and history", "Megam::RequestCollection"
    ),
    ("GET", "/v1/requests/{node_name}"): Operation(
        "The requests of one node", "Megam::RequestCollection"
    ),
    ("GET", "/v1/jobs/{job_id}"): Operation("One request (job) with its history", "Megam::Request"),
    ("GET", "/v1/logs/search"): Operation(
        "Full-text search over all your archived log lines, newest first",
        "Megam::LogLineCollection (each hit with node_name and job_state)",
        query=(
            Query("q", "words that must all occur in a line"),
            Query("node", "only this node"),
            JOB,
            Query("state", "only jobs in this state, e.g. failed"),
            Query("since", "seconds since the epoch", "number"),
            Query("until", "seconds since the epoch", "number"),
            Query("limit", "at most this many hits (1-1000, default 100)", "integer"),
        ),
    ),
    ("POST", "/v1/jobs/{job_id}/cancel"): Operation(
        "Cancel a job: ended at once if it has not reached the queue (200), else herk stops it "
        "or never starts it and reports cancelled (202); 409 if it has ended",
        "messages",
        status=202,
    ),
    ("GET", "/v1/cluster"): Operation(
        "Admins: herk nodes from their heartbeats, queue depth and dead-letter count",
        "Megam::HerkNodeCollection plus queue_depth, dead_letters, alive",
    ),
    ("POST", "/v1/cluster/{herk}/drain"): Operation(
        "Admins: a herk node finishes its in-flight jobs and takes no more",
        "202 messages",
        status=202,
    ),
    ("POST", "/v1/cluster/{herk}/scale"): Operation(
        "Admins: resize a herk node's worker pool",
        "202 messages",
        body=(schemas.ScaleInput,),
        status=202,
    ),
    ("GET", "/v1/cluster/deadletters"): Operation(
        "Admins: the dead-lettered job requests with the reason (a peek: nothing is removed)",
        "Megam::DeadLetterCollection",
        query=(Query("limit", "at most this many (1-1000, default 100)", "integer"),),
    ),
    ("POST", "/v1/cluster/deadletters/requeue"): Operation(
        "Admins: publish dead-lettered requests back to megam.requests",
        "messages",
        body=(schemas.DeadLetterSelection,),
    ),
    ("POST", "/v1/cluster/deadletters/discard"): Operation(
        "Admins: drop dead-lettered requests", "messages", body=(schemas.DeadLetterSelection,)
    ),
    ("POST", "/v1/nodes/update"): created(
        "Change a node's status, name or current app/bolt definitions (empty keeps the old value)",
        schemas.NodeUpdateInput,
    ),
    ("POST", "/v1/cloudtoolsettings/content"): created(
        "Which chef-repo and knife.rb to use", schemas.CloudToolSettingInput
    ),
    ("GET", "/v1/cloudtoolsettings"): Operation(
        "Your cloud tool settings", "Megam::CloudToolSettingCollection"
    ),
    ("GET", "/v1/cloudtoolsettings/{id}"): Operation(
        "One cloud tool setting (CTS…)", "Megam::CloudToolSetting"
    ),
    ("POST", "/v1/sshkeys/content"): created(
        "An ssh key; the private key is encrypted at rest and never returned", schemas.SshKeyInput
    ),
    ("GET", "/v1/sshkeys"): Operation("Your ssh keys (no private keys)", "Megam::SshKeyCollection"),
    ("GET", "/v1/sshkeys/{name}"): Operation("One ssh key (no private key)", "Megam::SshKey"),
    ("GET", "/v1/marketplaces"): Operation(
        "The seeded marketplace", "Megam::MarketPlaceCollection"
    ),
    ("GET", "/v1/marketplaces/{id}"): Operation(
        "One marketplace item, by name or id", "Megam::MarketPlace"
    ),
    ("POST", "/v1/marketplaceaddons/content"): created(
        "Put a marketplace addon on a node (stored; no job runs for it)",
        schemas.MarketplaceAddonInput,
    ),
    ("GET", "/v1/marketplaceaddons/{node_id}"): Operation(
        "The addons of a node (NOD…)", "Megam::MarketPlaceAddonsCollection"
    ),
    ("POST", "/v1/appdefns/content"): created(
        "App runtime definitions for a node", schemas.AppDefnsInput
    ),
    ("POST", "/v1/appdefns/update"): created("Replace app definitions", schemas.AppDefnsUpdate),
    ("GET", "/v1/appdefns"): Operation("All your app definitions", "Megam::AppDefnCollection"),
    ("GET", "/v1/appdefns/{node_id}"): Operation(
        "The app definitions of a node (NOD…)", "Megam::AppDefnCollection"
    ),
    ("GET", "/v1/appdefns/{node_id}/{id}"): Operation(
        "One app definition of a node", "Megam::AppDefns"
    ),
    ("POST", "/v1/boltdefns/content"): created(
        "Bolt (data service) definitions for a node; apikey is encrypted and never returned",
        schemas.BoltDefnsInput,
    ),
    ("POST", "/v1/boltdefns/update"): created("Replace bolt definitions", schemas.BoltDefnsUpdate),
    ("GET", "/v1/boltdefns/{node_id}"): Operation(
        "The bolt definitions of a node (NOD…)", "Megam::BoltDefnCollection"
    ),
    ("POST", "/v1/appreqs/content"): created(
        "An app lifecycle request (start, stop, restart, build): stored, not run in v1",
        schemas.AppReqInput,
    ),
    ("GET", "/v1/appreqs/{node_id}"): Operation(
        "The app lifecycle requests of a node", "Megam::AppRequestCollection"
    ),
    ("POST", "/v1/boltreqs/content"): created(
        "A bolt lifecycle request: stored, not run in v1", schemas.BoltReqInput
    ),
    ("GET", "/v1/boltreqs/{node_id}"): Operation(
        "The bolt lifecycle requests of a node", "Megam::BoltRequestCollection"
    ),
    ("GET", "/v1/openapi.json"): Operation("This document", "OpenAPI 3.1"),
    ("GET", "/healthz"): Operation("Liveness", "{status}"),
    ("GET", "/readyz"): Operation("Readiness: store and broker", "{status, store, bus}"),
    ("GET", "/metrics"): Operation("Prometheus metrics", "text/plain", media_type="text/plain"),
}

_ERRORS: Final = {
    400: "malformed body or parameter",
    401: "missing signature, unknown email, or signature made with another key",
    403: "not yours",
    404: "not found (or not yours)",
    406: "unparsable signature header",
    409: "the name is taken",
    413: "body too large",
    503: "store, broker or uid service unavailable",
}
_MESSAGE: Final = {
    "type": "object",
    "required": ["code", "msg_type", "msg", "more", "json_claz", "links"],
    "properties": {
        "code": {"type": "integer"},
        "msg_type": {"enum": ["info", "error"]},
        "msg": {"type": "string"},
        "more": {"type": "string"},
        "json_claz": {"type": "string"},
        "links": {"type": "string"},
    },
}


def document(app: web.Application) -> dict[str, Any]:
    structs = sorted(
        {kind for op in OPERATIONS.values() for kind in op.body}, key=lambda k: k.__name__
    )
    _, components = msgspec.json.schema_components(structs, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        if is_console(path):
            continue  # the web console's pages are not API
        operation = OPERATIONS[(route.method, path)]  # a route without an entry is a bug
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.method, path, operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Megam gateway",
            "version": __version__,
            "description": "Megam's /v1 API. Sign requests with "
            f"{hmac.HMAC_HEADER}: <email>:<hex HMAC-SHA1 of date, path and base64(md5(body))>, "
            f"{hmac.DATE_HEADER}: <YYYY-MM-DD HH:MM>; send {hmac.ALG_HEADER}: sha256 for "
            "HMAC-SHA256.",
        },
        "paths": paths,
        "components": {
            "schemas": {**components, "Message": _MESSAGE},
            "securitySchemes": {
                "MegamHmac": {"type": "apiKey", "in": "header", "name": hmac.HMAC_HEADER}
            },
        },
    }


def _operation(method: str, path: str, op: Operation) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    parameters += [
        {"name": q.name, "in": "query", "description": q.description, "schema": {"type": q.type}}
        for q in op.query
    ]
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        "parameters": parameters,
        "responses": {
            str(op.status): {
                "description": op.answer,
                "content": {op.media_type: {"schema": {}}},
            },
            **{
                str(code): {
                    "description": why,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Message"}}
                    },
                }
                for code, why in _ERRORS.items()
            },
        },
        "security": [] if _is_open(method, path) else [{"MegamHmac": []}],
    }
    if op.body:
        refs = [{"$ref": REF.format(name=kind.__name__)} for kind in op.body]
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return out


def is_console(path: str) -> bool:
    return path == "/" or path.startswith("/console")


def _is_open(method: str, path: str) -> bool:
    return not path.startswith("/v1/") or (method, path) in auth.OPEN_ROUTES
