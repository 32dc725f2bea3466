"""No secret rests in clear on disk after herk is SIGKILLed mid-knife: the job's knife config (the
cloud's keys, the tenant's knife.rb, a google.json) lives in herk's private directory under the
data dir, which the node's guardian removes the moment the node dies, and the next start removes
if the guardian died too. Searched: every file under the data dir and under TMPDIR, for every
form a hostile secret may take (tests/hostile_secrets.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from herk.orphans import private_root
from megam import wire
from megam.bus.amqp import AmqpBus
from megam.secrets import Sealer, load_or_create_key
from tests.faults.faultkit import HerkProcesses, Recorder, submit
from tests.faults.test_herk_orphans import guardian_of
from tests.herk.herk_testkit import (
    BUNDLED_ACTORS,
    FAKES,
    kill_quietly,
    read_pids,
    until,
    wait_dead,
    wait_for_file,
)
from tests.hostile_secrets import HOSTILE, found_in_files

SECRETS = {
    "aws_access_key_id": HOSTILE["quotes"],
    "aws_secret_access_key": HOSTILE["backslashes"],
    "extra_unicode": HOSTILE["unicode"],
    "extra_newlines": HOSTILE["newlines"],
    "knife_rb": "knife[:ssh_password] = 'tenant-rb-password-77'\n",
}
EC2 = {"cloud": {"cctype": "ec2", "spec": {"image": "ami-0abc1234"}}, "run_list": ["role[web]"]}


@pytest.fixture
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, actors: Path) -> Path:
    """A TMPDIR of the test's own, the knife stand-in on PATH, hanging mid-create."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setenv("PATH", f"{FAKES}:{os.environ['PATH']}")
    monkeypatch.setenv("MEGAM_HERK_PASSENV", "MEGAM_FAKE_*")
    monkeypatch.setenv("MEGAM_FAKE_HANG", "1")
    monkeypatch.setenv("MEGAM_FAKE_PIDS", str(tmp_path / "knife.pids"))
    (actors / "knife.create.toml").write_text((BUNDLED_ACTORS / "knife.create.toml").read_text())
    return tmpdir


@pytest.fixture
def knife_pids(tmp_path: Path) -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    kill_quietly(pids)


async def knife_hanging(
    broker: AmqpBus, nodes: HerkProcesses, tmp_path: Path, pids: list[int]
) -> None:
    sealer = Sealer(load_or_create_key(nodes.data_dir / "secret.key"))
    request = wire.JobRequest(
        job_id="RIP7700000000001",
        type="knife.create",
        node="web1.megam.co",
        account="ACT1001",
        correlation_id="secrets-at-rest",
        params=EC2,
        sealed=sealer.seal(SECRETS),
    )
    await submit(broker, [request])
    pids_file = tmp_path / "knife.pids"
    await wait_for_file(pids_file, timeout=60, unless=lambda: not nodes.alive("victim"))
    pids.extend(read_pids(pids_file))


async def restarted(nodes: HerkProcesses, recorder: Recorder) -> None:
    """Start the victim again and wait for its first heartbeat: it reaps before it beats."""
    last_beat = recorder.beat_seen.get("victim")
    nodes.start("victim", workers=1)
    await recorder.until(
        lambda: recorder.beat_seen.get("victim") != last_beat, "the restarted node's heartbeat"
    )


def secrets_on_disk(nodes: HerkProcesses, tmpdir: Path) -> dict[str, list[str]]:
    values = list(SECRETS.values())
    return {**found_in_files(nodes.data_dir, values), **found_in_files(tmpdir, values)}


async def test_the_guardian_removes_the_knife_config_of_a_node_killed_mid_knife(
    broker: AmqpBus,
    recorder: Recorder,
    herk_nodes: HerkProcesses,
    tmpdir_env: Path,
    tmp_path: Path,
    knife_pids: list[int],
) -> None:
    herk_nodes.start("victim", workers=1)
    await knife_hanging(broker, herk_nodes, tmp_path, knife_pids)
    resting = secrets_on_disk(herk_nodes, tmpdir_env)
    private = str(private_root(herk_nodes.data_dir))
    assert resting, "while knife runs, its config is on disk"
    assert all(path.startswith(private) for path in resting), resting

    herk_nodes.kill("victim")
    assert await wait_dead(knife_pids, timeout=30) == []
    await until(
        lambda: herk_nodes.logged("victim", "orphans.private_removed"), "the guardian's removal"
    )
    assert secrets_on_disk(herk_nodes, tmpdir_env) == {}

    await restarted(herk_nodes, recorder)
    assert secrets_on_disk(herk_nodes, tmpdir_env) == {}


async def test_a_node_killed_with_its_guardian_removes_the_knife_config_when_it_starts(
    broker: AmqpBus,
    recorder: Recorder,
    herk_nodes: HerkProcesses,
    tmpdir_env: Path,
    tmp_path: Path,
    knife_pids: list[int],
) -> None:
    herk_nodes.start("victim", workers=1)
    await knife_hanging(broker, herk_nodes, tmp_path, knife_pids)
    os.kill(guardian_of(herk_nodes.processes["victim"].pid), signal.SIGKILL)
    await until(lambda: herk_nodes.logged("victim", "herk.guardian_lost"), "the loss to be logged")
    herk_nodes.kill("victim")
    assert secrets_on_disk(herk_nodes, tmpdir_env), "nobody was left to remove the config"

    await restarted(herk_nodes, recorder)
    assert herk_nodes.logged("victim", "orphans.private_removed")
    assert secrets_on_disk(herk_nodes, tmpdir_env) == {}
