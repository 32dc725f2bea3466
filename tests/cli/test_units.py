"""Node metrics printed as a person reads them, and whose figures they are."""

from __future__ import annotations

import pytest

from megam_cli.units import scope, with_unit


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("mem_total", 2.09591e10, "19.5 GiB"),
        ("proc_rss_bytes", 512, "512 B"),
        ("bytes_in", 3 * 1024 * 1024, "3.0 MiB/s"),
        ("proc_cpu_percent", 12.5, "12.50%"),
        ("http_requests_per_min", 42, "42 requests/min"),
        ("nginx_requests", 1234567, "1,234,567 requests (total)"),
        ("something_new", 0.5, "0.50"),
    ],
)
def test_values_carry_their_unit(name: str, value: float, shown: str) -> None:
    assert with_unit(name, value) == shown


def test_host_figures_are_labelled_as_the_hosts() -> None:
    assert scope("mem_total") == "host" and scope("cpu_user") == "host"
    assert scope("proc_rss_bytes") == "node process"
