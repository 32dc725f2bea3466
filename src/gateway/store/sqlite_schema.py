"""The SQLite schema, v1, created on first use; ``schema_version`` guards later migrations."""

from __future__ import annotations

from typing import Final

VERSION: Final = 1

PRAGMAS: Final = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",  # WAL + NORMAL: durable across a process crash, not power loss
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
)

ANALYSIS_LIMIT: Final = 1000
"""Rows ``ANALYZE`` samples per index (at open and after each hourly purge): approximate
statistics at a bounded cost, enough for the planner to tell a node's jobs from an account's."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    api_key_encrypted TEXT NOT NULL,
    authority TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS predef_clouds (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    type_name TEXT NOT NULL,
    spec TEXT NOT NULL,
    access TEXT NOT NULL,
    credentials_encrypted TEXT,
    created_at REAL NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    cloud TEXT NOT NULL,
    command TEXT NOT NULL,
    predefs TEXT NOT NULL,
    defns_encrypted TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
-- Node names are DNS names, unique across the cluster while the node exists (as Megam's Riak key).
CREATE UNIQUE INDEX IF NOT EXISTS nodes_live_name ON nodes (name) WHERE status <> 'DELETED';
CREATE INDEX IF NOT EXISTS nodes_by_account ON nodes (account_id, name, created_at);

CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    node_id TEXT NOT NULL REFERENCES nodes(id),
    node_name TEXT NOT NULL,
    req_type TEXT NOT NULL,
    job_type TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    exit_code INTEGER,
    attempt INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    herk TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    published INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_node ON jobs (node_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_account ON jobs (account_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);  -- the reconciler's running jobs

CREATE TABLE IF NOT EXISTS job_history (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    exit_code INTEGER,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS job_history_by_job ON job_history (job_id, id);

CREATE TABLE IF NOT EXISTS outbox (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL,
    correlation_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    due_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due_at);

-- AUTOINCREMENT: a cursor (row id) is never reused, even after old lines are purged.
CREATE TABLE IF NOT EXISTS log_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    at REAL NOT NULL,
    UNIQUE (job_id, attempt, seq)
);
CREATE INDEX IF NOT EXISTS log_lines_by_node ON log_lines (node_id, id);

-- Full-text index over every archived line (an external-content FTS5 table: text stored once).
CREATE VIRTUAL TABLE IF NOT EXISTS log_search USING fts5 (
    text, content = 'log_lines', content_rowid = 'id'
);
CREATE TRIGGER IF NOT EXISTS log_lines_indexed AFTER INSERT ON log_lines BEGIN
    INSERT INTO log_search (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS log_lines_unindexed AFTER DELETE ON log_lines BEGIN
    INSERT INTO log_search (log_search, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TABLE IF NOT EXISTS metric_samples (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    node_name TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_samples_by_node ON metric_samples (account_id, node_name, at);
CREATE INDEX IF NOT EXISTS metric_samples_by_age ON metric_samples (at);

-- Samples rolled up over ``step`` seconds (300, 3600): mean, low, high and count per point.
CREATE TABLE IF NOT EXISTS metric_rollups (
    account_id TEXT NOT NULL,
    node_name TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    at INTEGER NOT NULL,
    value REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (account_id, node_name, step, at, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metric_rollups_by_age ON metric_rollups (step, at);

-- Progress markers of background passes, e.g. the last metric sample id rolled up.
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    body TEXT NOT NULL,
    secret_encrypted TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (account_id, kind, name)
);
CREATE INDEX IF NOT EXISTS documents_by_node ON documents (account_id, kind, node_id, created_at);

CREATE TABLE IF NOT EXISTS herk_nodes (
    name TEXT PRIMARY KEY,
    workers INTEGER NOT NULL,
    busy INTEGER NOT NULL,
    inflight TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at REAL NOT NULL,
    draining INTEGER NOT NULL,
    last_seen REAL NOT NULL
);
"""

ADDED_COLUMNS: Final = (
    ("nodes", "appdefnsid", "TEXT NOT NULL DEFAULT ''"),
    ("nodes", "boltdefnsid", "TEXT NOT NULL DEFAULT ''"),
    ("herk_nodes", "held", "TEXT NOT NULL DEFAULT '[]'"),
    ("herk_nodes", "interval", "REAL NOT NULL DEFAULT 0"),
    ("jobs", "presumed", "INTEGER NOT NULL DEFAULT 0"),
)
"""(table, column, definition) added to v1 since: ``ALTER TABLE … ADD COLUMN`` when missing."""

WRITTEN: Final = """
CREATE TEMP TABLE IF NOT EXISTS written (account_id TEXT NOT NULL, name TEXT NOT NULL);
CREATE TEMP TRIGGER IF NOT EXISTS node_added AFTER INSERT ON main.nodes BEGIN
    INSERT INTO written VALUES (new.account_id, new.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS node_changed AFTER UPDATE ON main.nodes BEGIN
    INSERT INTO written VALUES (old.account_id, old.name), (new.account_id, new.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS node_dropped AFTER DELETE ON main.nodes BEGIN
    INSERT INTO written VALUES (old.account_id, old.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS job_added AFTER INSERT ON main.jobs BEGIN
    INSERT INTO written SELECT account_id, name FROM main.nodes WHERE id = new.node_id;
END;
CREATE TEMP TRIGGER IF NOT EXISTS job_changed AFTER UPDATE ON main.jobs BEGIN
    INSERT INTO written SELECT account_id, name FROM main.nodes WHERE id = new.node_id;
END;
CREATE TEMP TRIGGER IF NOT EXISTS job_dropped AFTER DELETE ON main.jobs BEGIN
    INSERT INTO written SELECT account_id, name FROM main.nodes WHERE id = old.node_id;
END;
"""
"""The writer connection's own record of the nodes each transaction wrote (a node or one of
its jobs), drained before COMMIT: the database itself says which node views a write voids, so
no write path, present or future, can leave one stale."""
