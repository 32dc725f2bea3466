"""The gateway publishes only the job types herk's catalogue offers (``gateway.jobs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import jobs
from gateway.errors import BadRequest, Unavailable
from gateway.store.records import CloudTarget
from megam import job_types
from tests.kernel.test_job_types import entry

LOCAL = CloudTarget(name="local", cctype="local", spec={}, access={})


def test_a_type_the_catalogue_offers_is_built_and_checked(tmp_path: Path) -> None:
    entry(tmp_path, "local.create", "run_list")
    offered = job_types.read(tmp_path)
    assert jobs.job_spec(LOCAL, "create", ["role[web]"], offered) == (
        "local.create", {"run_list": ["role[web]"]},
    )  # fmt: skip


def test_a_type_the_catalogue_lacks_is_a_503_that_names_it(tmp_path: Path) -> None:
    entry(tmp_path, "local.create", "run_list")
    with pytest.raises(Unavailable, match=r"herk runs no local\.delete jobs here"):
        jobs.job_spec(LOCAL, "delete", [], job_types.read(tmp_path))


def test_params_are_checked_against_the_schema_the_catalogue_names(tmp_path: Path) -> None:
    entry(tmp_path, "local.create", "none")  # a catalogue whose local.create takes no params
    with pytest.raises(BadRequest, match=r"bad params for local\.create"):
        jobs.job_spec(LOCAL, "create", ["role[web]"], job_types.read(tmp_path))
