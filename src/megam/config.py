"""Settings for every Megam process, read from ``MEGAM_*`` environment variables.

Every setting has a localhost default so that services started on one machine find each other
without configuration. Command-line flags override the environment (see ``megam.cli``).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from pathlib import Path

from megam import env

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_GATEWAY_PORT = 9000
DEFAULT_UID_PORT = 7609  # the port Megam's snowflake fork listened on
DEFAULT_HERK_METRICS_PORT = 9100


def default_data_dir() -> Path:
    return Path(env.text("MEGAM_DATA_DIR") or Path.home() / ".megam").expanduser()


def default_herk_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    amqp_url: str | None
    store_url: str
    uid_url: str | None
    gateway_port: int
    uid_port: int
    herk_metrics_port: int
    workers: int
    herk_name: str
    actors_dir: Path
    secret_key_file: Path
    log_level: str
    datacenter_id: int
    worker_id: int | None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the environment; ``overrides`` that are not None win."""
        data_dir = Path(str(overrides.get("data_dir") or default_data_dir())).expanduser()
        values: dict[str, object] = {
            "data_dir": data_dir,
            "amqp_url": env.text("MEGAM_AMQP_URL"),
            "store_url": env.text("MEGAM_STORE_URL") or f"sqlite:///{data_dir / 'megam.db'}",
            "uid_url": env.text("MEGAM_UID_URL"),
            "gateway_port": env.integer("MEGAM_PORT", DEFAULT_GATEWAY_PORT),
            "uid_port": env.integer("MEGAM_UID_PORT", DEFAULT_UID_PORT),
            "herk_metrics_port": env.integer("MEGAM_HERK_METRICS_PORT", DEFAULT_HERK_METRICS_PORT),
            "workers": env.integer("MEGAM_WORKERS", 4),
            "herk_name": env.text("MEGAM_HERK_NAME") or default_herk_name(),
            "actors_dir": Path(env.text("MEGAM_ACTORS_DIR") or _bundled_actors_dir()),
            "secret_key_file": Path(env.text("MEGAM_SECRET_KEY_FILE") or data_dir / "secret.key"),
            "log_level": (env.text("MEGAM_LOG_LEVEL") or "info").lower(),
            "datacenter_id": env.integer("MEGAM_DATACENTER_ID", 0),
            "worker_id": env.integer("MEGAM_WORKER_ID", -1),
        }
        if values["worker_id"] == -1:
            values["worker_id"] = None
        for key, value in overrides.items():
            if value is not None and key != "data_dir":
                values[key] = value
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if not 0 <= self.datacenter_id < 32:
            raise ValueError("datacenter id must be in 0..31")
        if self.worker_id is not None and not 0 <= self.worker_id < 32:
            raise ValueError("worker id must be in 0..31")


def _bundled_actors_dir() -> Path:
    """The ``actors/`` catalogue: the source tree's (an editable install, or a checkout), else
    the copy a wheel installs under ``<prefix>/share/megam/actors``."""
    source_tree = Path(__file__).resolve().parents[2] / "actors"
    if source_tree.is_dir():
        return source_tree
    return Path(sys.prefix) / "share" / "megam" / "actors"
