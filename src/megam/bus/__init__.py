"""One bus interface, two adapters: RabbitMQ (aio-pika) and an embedded in-process broker."""

from pathlib import Path

from megam.bus.base import Bus, BusError, Delivery, Handler, PublishError, Subscription


def connect_bus(amqp_url: str | None, data_dir: Path | None = None) -> Bus:
    """The RabbitMQ bus for a URL; for None, the embedded bus, kept in ``data_dir/bus`` (in
    memory only without a ``data_dir``)."""
    if amqp_url:
        from megam.bus.amqp import AmqpBus

        return AmqpBus(amqp_url)
    from megam.bus.embedded import EmbeddedBus

    return EmbeddedBus(data_dir / "bus" if data_dir is not None else None)


__all__ = ["Bus", "BusError", "Delivery", "Handler", "PublishError", "Subscription", "connect_bus"]
