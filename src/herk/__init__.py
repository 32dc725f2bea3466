"""Herk: the master/worker cluster that turns job requests into Chef (and local) runs.

A herk node consumes ``herk.requests``, validates each request against the job catalogue
(``actors/``), hands it to a pykka worker actor that runs it as a subprocess, streams its output as
log events and publishes its status. ``docs/herk.md`` describes the design and its delivery
semantics. Herk imports only the shared kernel (``megam.*``), never the other services.
"""
