"""One bus interface, two adapters: RabbitMQ (aio-pika) and an embedded in-process broker."""

from megam.bus.base import Bus, BusError, Delivery, Handler, PublishError, Subscription


def connect_bus(amqp_url: str | None) -> Bus:
    """The RabbitMQ bus for a URL, the embedded bus for None."""
    if amqp_url:
        from megam.bus.amqp import AmqpBus

        return AmqpBus(amqp_url)
    from megam.bus.embedded import EmbeddedBus

    return EmbeddedBus()


__all__ = ["Bus", "BusError", "Delivery", "Handler", "PublishError", "Subscription", "connect_bus"]
