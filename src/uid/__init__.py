"""The uid service: Snowflake ids over HTTP from a worker id leased without ZooKeeper.

Modules: ``lease`` (the lease interface), ``file_lease`` and ``amqp_lease`` (the two kinds),
``keeper`` (keeps a lease and fences the generator with it), ``service`` (the aiohttp app),
``render`` (batch answers computed from id ranges), ``metrics`` and ``main`` (entry points).
"""
