"""``megam agent``: reports a node's metrics to the platform, as Megam's gmond did.

The Chef run list installs it on cloud nodes (local nodes are sampled by their herk host). It is
an AMQP producer like the original's per-node ``gulpd``: it publishes ``MetricEvent``s to
``megam.events`` and needs nothing else from the platform.
"""
