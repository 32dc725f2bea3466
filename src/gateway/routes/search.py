"""Full-text search over every archived log line of the caller's account."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from aiohttp import web

from gateway import envelope, query, views
from gateway.errors import BadRequest
from gateway.services import caller, services
from gateway.store.records import LogQuery
from megam.wire import JobState, NodeName

routes = web.RouteTableDef()

MAX_WORDS: Final = 16
MAX_WORD: Final = 64
STATES: Final = frozenset(state.value for state in JobState)
_NODE_NAME: Final = re.compile(NodeName.__metadata__[0].pattern)


@routes.get("/v1/logs/search")
async def search_logs(request: web.Request) -> web.Response:
    words = tuple(request.query.get("q", "").split())
    if not words:
        raise BadRequest("query parameter q is required", more="the words to look for")
    if len(words) > MAX_WORDS or any(len(word) > MAX_WORD for word in words):
        raise BadRequest(f"q takes at most {MAX_WORDS} words of at most {MAX_WORD} characters")
    if any(unicodedata.category(c) == "Cc" for word in words for c in word):
        # a NUL would end SQLite's FTS query early: refused here, in words, for every store
        raise BadRequest("query parameter q must be words of text, without control characters")
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"query parameter state must be one of {', '.join(sorted(STATES))}")
    wanted = LogQuery(
        words=words,
        node_name=_node_name(request),
        job_id=query.job_id(request),
        job_state=state,
        since=query.epoch(request, "since"),
        until=query.epoch(request, "until"),
        limit=query.integer(request, "limit", default=100, low=1, high=1000) or 100,
    )
    hits = await services(request).store.search_logs(caller(request).id, wanted)
    results = (
        {**views.log_line(hit.line), "node_name": hit.node_name, "job_state": hit.job_state}
        for hit in hits
    )
    return envelope.json(envelope.collection("LogLine", results))


def _node_name(request: web.Request) -> str | None:
    name = request.query.get("node") or None
    if name is not None and not _NODE_NAME.fullmatch(name):
        raise BadRequest(f"query parameter node must be a node name, got {name!r}")
    return name
