"""The ``megam`` command: runs the services (``up``, ``gateway``, ``herk``, ``uid``) and is an
HTTP client of the gateway's ``/v1`` API for everything else.

This package is the composition root: it is the only place that imports more than one service.
"""
