"""A malformed request is dead-lettered with its reason, never requeued, and never stops herk."""

from __future__ import annotations

import orjson
from herk_testkit import EventLog, QueueLog, job_request, submit, submit_raw

from megam import topology, wire
from megam.bus import Bus
from megam.secrets import Sealer

KNIFE_PARAMS = {"cloud": {"cctype": "ec2", "spec": {"image": "ami-1"}}, "run_list": []}


def poison_cases(sealer: Sealer) -> list[tuple[str, bytes, str, bool]]:
    """(name, body, expected reason fragment, whether a ``rejected`` status can be published)."""

    def good() -> dict:  # each case is its own job
        return msgspec_builtins(job_request("local.create", {"run_list": []}))

    ten_mb = orjson.dumps({**good(), "params": {"blob": "x" * (10 * 1024 * 1024)}})
    return [
        ("invalid JSON", b'{"v": 1, "job_id": ', "invalid JSON", False),
        ("not an object", b"[1, 2, 3]", "expected a JSON object", False),
        (
            "wrong schema version",
            orjson.dumps({**good(), "v": 2}),
            "unsupported schema version 2",
            True,
        ),
        ("10 MB body", ten_mb, "message too large", False),
        (
            "unknown type",
            orjson.dumps(msgspec_builtins(job_request("cloud.teleport"))),
            "unknown job type 'cloud.teleport'",
            True,
        ),
        (
            "bad params",
            orjson.dumps({**good(), "params": {"run_list": ["rm -rf /"]}}),
            "bad params for schema 'run_list'",
            True,
        ),
        (
            "unknown param",
            orjson.dumps({**good(), "params": {"run_list": [], "shell": "sh"}}),
            "unknown field `shell`",
            True,
        ),
        (
            "a knife flag value that reads as an option",
            orjson.dumps(
                msgspec_builtins(
                    job_request(
                        "knife.create",
                        {**KNIFE_PARAMS, "cloud": {"cctype": "ec2", "spec": {"image": "-o x"}}},
                    )
                )
            ),
            "at `$.cloud.spec.image`",
            True,
        ),
        (
            "sealed secrets that cannot be opened",
            orjson.dumps(
                msgspec_builtins(job_request("knife.create", KNIFE_PARAMS, sealed="garbage"))
            ),
            "sealed secrets cannot be opened",
            True,
        ),
        (
            "credentials missing from the sealed secrets",
            orjson.dumps(
                msgspec_builtins(
                    job_request(
                        "knife.create",
                        KNIFE_PARAMS,
                        sealed=sealer.seal({"aws_access_key_id": "AKIA1234"}),
                    )
                )
            ),
            "ec2 needs sealed secrets aws_secret_access_key",
            True,
        ),
    ]


def msgspec_builtins(request: wire.JobRequest) -> dict:
    return orjson.loads(wire.encode(request))


class TestPoisonRequests:
    async def test_each_lands_in_the_dead_letter_queue_and_a_good_job_still_runs(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer
    ) -> None:
        await start_herk(bus)
        dead = await QueueLog().attach(bus, topology.HERK_REQUESTS_DEAD.name)
        cases = poison_cases(sealer)
        for _, body, _, _ in cases:
            await submit_raw(bus, body)
        good = await submit(bus, job_request("noop"))

        assert (await events.terminal(good.job_id)).state == "succeeded"
        letters = await dead.wait_for(len(cases))
        by_body = {letter.body: letter for letter in letters}
        for name, body, reason, identifiable in cases:
            letter = by_body.get(body)
            assert letter is not None, f"{name}: not dead-lettered"
            assert reason in letter.headers[wire.REASON_HEADER], name
            if identifiable:
                job_id = orjson.loads(body)["job_id"]
                rejected = await events.terminal(job_id)
                assert rejected.state == "rejected", name
                assert reason in rejected.reason, name
        assert len(letters) == len(cases), "each poison message is dead-lettered exactly once"

    async def test_the_consumer_is_not_blocked_by_a_stream_of_garbage(
        self, bus: Bus, events: EventLog, start_herk
    ) -> None:
        await start_herk(bus, workers=1)
        for number in range(50):
            await submit_raw(bus, b"garbage %d" % number)
        good = await submit(bus, job_request("noop"))
        assert (await events.terminal(good.job_id)).state == "succeeded"
        assert await bus.queue_depth(topology.HERK_REQUESTS.name) == 0
