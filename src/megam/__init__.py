"""Megam's shared kernel: the wire contract, bus adapters, configuration and logging.

The three services (``gateway``, ``herk``, ``uid``) depend on this package and on nothing of
each other; they talk only through the messages and HTTP API defined here.
"""

__version__ = "0.1.0"
