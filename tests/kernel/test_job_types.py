"""The job types the catalogue offers, read by any service (``megam.job_types``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from herk import params as herk_params
from herk.catalogue import load_catalogue
from megam import job_types
from megam.config import Settings
from megam.params import KnifeParams, NoParams, RunListParams


def entry(directory: Path, name: str, params: str) -> None:
    """A catalogue file with the fields every service reads (herk checks more)."""
    body = f'name = "{name}"\ndescription = "a test type"\nparams = "{params}"\n'
    (directory / f"{name}.toml").write_text(body, encoding="utf-8")


class TestTheBundledCatalogue:
    def test_it_offers_the_types_the_gateway_publishes_with_their_schemas(self) -> None:
        offered = job_types.bundled()
        assert offered.params_schema("local.create") is RunListParams
        assert offered.params_schema("local.delete") is NoParams
        assert offered.params_schema("knife.create") is KnifeParams
        assert offered.params_schema("knife.delete") is KnifeParams

    def test_it_is_the_catalogue_herk_runs_from(self, tmp_path: Path) -> None:
        directory = Settings.from_env(data_dir=tmp_path).actors_dir
        offered, herk = job_types.read(directory), load_catalogue(directory)
        assert list(offered) == list(herk)
        for name in herk:
            definition = herk.get(name)
            assert definition is not None
            if definition.params in job_types.WIRE_SCHEMAS:
                assert offered.params_schema(name) is herk_params.SCHEMAS[definition.params]


class TestReading:
    def test_a_type_the_catalogue_lacks_is_named_in_the_error(self, tmp_path: Path) -> None:
        entry(tmp_path, "local.create", "run_list")
        offered = job_types.read(tmp_path)
        with pytest.raises(job_types.JobTypeError, match=r"has no job type knife\.create"):
            offered.params_schema("knife.create")

    def test_a_type_whose_params_are_not_on_the_wire_is_refused(self, tmp_path: Path) -> None:
        entry(tmp_path, "chef.converge", "converge")
        with pytest.raises(job_types.JobTypeError, match="not a wire schema"):
            job_types.read(tmp_path).params_schema("chef.converge")

    def test_an_unreadable_file_or_an_empty_catalogue_says_which(self, tmp_path: Path) -> None:
        with pytest.raises(job_types.JobTypeError, match=r"no \*\.toml job definitions"):
            job_types.read(tmp_path)
        (tmp_path / "broken.toml").write_text("name = \n", encoding="utf-8")
        with pytest.raises(job_types.JobTypeError, match=r"broken\.toml"):
            job_types.read(tmp_path)

