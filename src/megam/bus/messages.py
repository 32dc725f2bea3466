"""A message as the embedded bus holds it, and its row in the journal."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson

from megam.bus.base import PublishError
from megam.topology import Queue


class Message:
    __slots__ = (
        "at",
        "body",
        "correlation_id",
        "deliveries",
        "exchange",
        "headers",
        "message_id",
        "offset",
        "routing_key",
        "row",
    )

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str | None,
        correlation_id: str | None,
        headers: dict[str, Any],
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        self.message_id = message_id
        self.correlation_id = correlation_id
        self.headers = headers
        self.deliveries = 0
        self.at = time.time()
        self.offset: int | None = None
        """Its position in a stream queue."""
        self.row: int | None = None
        """Its row in the journal, for a message of a durable queue."""

    def copy(self, headers: dict[str, Any]) -> Message:
        return Message(
            self.exchange,
            self.routing_key,
            self.body,
            self.message_id,
            self.correlation_id,
            headers,
        )


def encode_spec(spec: Queue) -> bytes:
    return orjson.dumps(dataclasses.asdict(spec))


def decode_spec(raw: bytes) -> Queue:
    fields = orjson.loads(raw)
    fields["bindings"] = tuple(tuple(binding) for binding in fields["bindings"])
    return Queue(**fields)


def journal_row(queue_name: str, message: Message) -> tuple[Any, ...]:
    try:
        headers = orjson.dumps(message.headers)
    except TypeError as exc:
        raise PublishError(f"headers must be JSON values to be kept: {exc}") from None
    return (
        message.row,
        queue_name,
        message.exchange,
        message.routing_key,
        message.body,
        message.message_id,
        message.correlation_id,
        headers,
        message.deliveries,
        message.offset,
        message.at,
    )


def restored(row: tuple[Any, ...]) -> Message:
    row_id, _, exchange, routing_key, body, message_id, correlation_id, headers = row[:8]
    deliveries, offset, at = row[8:]
    headers = orjson.loads(headers)
    message = Message(exchange, routing_key, body, message_id, correlation_id, headers)
    message.row, message.deliveries, message.offset, message.at = row_id, deliveries, offset, at
    return message
