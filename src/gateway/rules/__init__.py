"""The gateway's job and node rules, as plain functions over records.

Each rule takes the records a store loaded inside one transaction (and the time), and returns
what to write (:class:`gateway.store.records.Changes`) with what to answer, or raises the store
error the caller maps to an HTTP answer. The rules never touch a database: the SQLite and MongoDB
adapters load records, call the rule and save its changes, so a rule is written once.

* :mod:`.jobs`: what a status event does to a job, cancelling, the outbox's reasons;
* :mod:`.nodes`: a node's status after a job, updates and renames, admitting a delete;
* :mod:`.retention`: what a retention pass drops.
"""
