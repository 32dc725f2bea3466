"""The gateway: Megam's ``/v1`` HTTP API in front of the store and the bus.

It turns HTTP requests into stored jobs and ``wire.JobRequest`` messages, and turns the status, log
and metric events that herk publishes back into what the API shows. It imports only ``megam.*``.
"""
