"""The wire contract: what is accepted, what is refused and why, and that docs/wire.md agrees."""

from __future__ import annotations

import concurrent.futures
import contextlib
import typing
from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from megam import params, topology, wire
from megam.secrets import Sealer, SecretError, load_or_create_key, mask

DOC = (Path(__file__).parents[1] / "docs" / "wire.md").read_text()

GOOD_REQUEST = {
    "v": 1,
    "job_id": "RIP431662859257118720",
    "type": "local.create",
    "node": "web1.megam.co",
    "account": "ACT431662859257118721",
    "correlation_id": "req-1",
    "params": {"run_list": ["role[web]"]},
}


def body(**changes: object) -> bytes:
    return orjson.dumps({**GOOD_REQUEST, **changes})


class TestRequestsAreValidated:
    def test_a_good_request_round_trips(self) -> None:
        request = wire.decode(body(), wire.JobRequest)
        assert request.node == "web1.megam.co" and request.attempt == 1
        assert wire.decode(wire.encode(request), wire.JobRequest) == request

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"{not json", "invalid JSON"),
            (b"[1, 2]", "expected a JSON object"),
            (body(v=2), "unsupported schema version 2"),
            (body(v=None), "unsupported schema version None"),
            (body(node="Web_1"), "invalid JobRequest"),
            (body(node="web.megam.co\n"), "invalid JobRequest"),  # $ alone would allow it
            (body(job_id="RIP1\n"), "invalid JobRequest"),
            (body(type="local.create\n"), "invalid JobRequest"),
            (body(job_id="1234"), "invalid JobRequest"),
            (body(type="Rm -rf"), "invalid JobRequest"),
            (body(params=[]), "invalid JobRequest"),
            (body(extra="x"), "unknown field `extra`"),
            (body(attempt=0), "invalid JobRequest"),
            (b"{" + b" " * (wire.MAX_MESSAGE_BYTES + 1) + b"}", "message too large"),
        ],
    )
    def test_bad_requests_are_refused_with_a_reason(self, raw: bytes, reason: str) -> None:
        with pytest.raises(wire.WireError) as refused:
            wire.decode(raw, wire.JobRequest)
        assert reason in refused.value.reason

    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_never_raise_anything_but_wire_error(self, raw: bytes) -> None:
        with contextlib.suppress(wire.WireError):
            wire.decode(raw, wire.JobRequest)

    def test_missing_field_is_named(self) -> None:
        raw = orjson.dumps({k: v for k, v in GOOD_REQUEST.items() if k != "node"})
        with pytest.raises(wire.WireError, match="node"):
            wire.decode(raw, wire.JobRequest)


KNIFE_PARAMS = {
    "cloud": {
        "cctype": "ec2",
        "spec": {"groups": "megam", "image": "ami-1", "flavor": "t2.micro"},
        "access": {"ssh_key": "megam_ec2", "identity_file": "~/.ssh/megam_ec2.pem"},
    },
    "run_list": ["role[web]", "recipe[nginx::default]"],
}


def knife_params(**cloud_changes: object) -> dict[str, object]:
    return {**KNIFE_PARAMS, "cloud": {**KNIFE_PARAMS["cloud"], **cloud_changes}}


class TestJobParams:
    def test_the_params_of_each_published_job_type_fit(self) -> None:
        knife = params.check(params.KnifeParams, KNIFE_PARAMS, "knife.create")
        assert knife.cloud.spec.image == "ami-1" and knife.cloud.access.region == ""
        local = params.check(params.RunListParams, {"run_list": ["role[web]"]}, "local.create")
        assert local.run_list == ["role[web]"]
        assert params.check(params.NoParams, {}, "local.delete") == params.NoParams()

    def test_a_knife_rb_path_on_the_herk_host_is_refused_saying_how_to_hand_one_over(
        self,
    ) -> None:
        raw = {**KNIFE_PARAMS, "knife_rb": "/srv/chef/.chef/knife.rb"}
        with pytest.raises(params.ParamsError) as refused:
            params.check(params.KnifeParams, raw, "knife.create")
        assert params.KNIFE_RB_REFUSED in str(refused.value)
        assert "credential `knife_rb`" in str(refused.value)

    @pytest.mark.parametrize(
        ("kind", "raw", "where"),
        [
            (params.KnifeParams, knife_params(spec={"image": "-oProxyCommand=x"}), "spec.image"),
            (params.KnifeParams, knife_params(spec={"image": "ami-1 -o x"}), "spec.image"),
            (params.KnifeParams, knife_params(access={"ssh_user": "a\nb"}), "access.ssh_user"),
            (params.KnifeParams, knife_params(spec={"image": "ami-1\n"}), "spec.image"),
            (params.KnifeParams, knife_params(spec={"image": "i" * 256}), "spec.image"),
            (params.KnifeParams, knife_params(spec={"region": "eu"}), "unknown field `region`"),
            (params.KnifeParams, knife_params(cctype="local"), "cloud.cctype"),
            (params.KnifeParams, {**KNIFE_PARAMS, "knife_rb": "knife.rb"}, "knife_rb"),
            (params.KnifeParams, {**KNIFE_PARAMS, "shell": "sh"}, "unknown field `shell`"),
            (params.KnifeParams, {**KNIFE_PARAMS, "knife_rb": "/srv/knife.rb\n"}, "knife_rb"),
            (params.RunListParams, {"run_list": ["rm -rf /"]}, "run_list[0]"),
            (params.RunListParams, {"run_list": ["role[web]\n"]}, "run_list[0]"),
            (params.RunListParams, {"run_list": [f"role[{'r' * 129}]"]}, "run_list[0]"),
            (params.NoParams, {"run_list": []}, "unknown field `run_list`"),
        ],
    )
    def test_bad_params_are_refused_naming_the_field(
        self, kind: type[params.Params], raw: dict[str, object], where: str
    ) -> None:
        with pytest.raises(params.ParamsError) as refused:
            params.check(kind, raw, "the job")
        assert str(refused.value).startswith("bad params for the job: ")
        assert where in str(refused.value)

    @given(st.text(max_size=40))
    def test_no_accepted_flag_value_reads_as_an_option_or_two_arguments(self, value: str) -> None:
        try:
            params.check(params.CloudSpec, {"image": value}, "a spec")
        except params.ParamsError:
            return
        assert not value.startswith("-")
        assert value.isprintable() and " " not in value


class TestEvents:
    def test_log_lines_are_compact_arrays(self) -> None:
        event = wire.LogEvent(
            job_id="RIP1",
            node="n1",
            account="ACT1",
            attempt=1,
            lines=[wire.LogLine(1, "stdout", "hello", 1.5)],
        )
        assert orjson.loads(wire.encode(event))["lines"] == [[1, "stdout", "hello", 1.5]]

    def test_terminal_states(self) -> None:
        assert {s for s in wire.JobState if s.terminal} == {
            wire.JobState.SUCCEEDED,
            wire.JobState.FAILED,
            wire.JobState.TIMED_OUT,
            wire.JobState.CANCELLED,
            wire.JobState.INTERRUPTED,
            wire.JobState.REJECTED,
        }

    def test_status_state_must_be_known(self) -> None:
        raw = orjson.dumps(
            {
                "v": 1,
                "job_id": "RIP1",
                "node": "n",
                "account": "ACT1",
                "type": "noop",
                "state": "exploded",
            }
        )
        with pytest.raises(wire.WireError):
            wire.decode(raw, wire.StatusEvent)


class TestSecrets:
    def test_sealed_secrets_open_only_with_the_cluster_key(self, tmp_path: Path) -> None:
        key = load_or_create_key(tmp_path / "k")
        assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
        token = Sealer(key).seal({"aws_secret_access_key": "s3cr3t-value"})
        assert "s3cr3t" not in token
        assert Sealer(key).unseal(token) == {"aws_secret_access_key": "s3cr3t-value"}
        with pytest.raises(SecretError):
            Sealer(load_or_create_key(tmp_path / "other")).unseal(token)

    def test_processes_that_start_together_agree_on_one_key(self, tmp_path: Path) -> None:
        path = tmp_path / "shared" / "secret.key"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _: load_or_create_key(path), range(16)))
        assert keys == {path.read_bytes().strip()}
        assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]

    def test_masking_hides_every_occurrence(self) -> None:
        assert mask("key=abcd1234 again abcd1234", ["abcd1234"]) == "key=**** again ****"


class TestDocumentationAgreesWithCode:
    @pytest.mark.parametrize(
        "kind",
        [
            wire.JobRequest,
            wire.StatusEvent,
            wire.LogEvent,
            wire.MetricEvent,
            wire.Heartbeat,
            wire.ControlCommand,
        ],
    )
    def test_every_field_is_documented(self, kind: type[msgspec.Struct]) -> None:
        section = DOC.split(f"### {kind.__name__}", 1)[1].split("\n### ", 1)[0]
        for field in kind.__struct_fields__:
            assert f"`{field}`" in section, f"{kind.__name__}.{field} missing from docs/wire.md"

    def test_every_exchange_and_queue_is_documented(self) -> None:
        for exchange in topology.EXCHANGES:
            assert f"`{exchange.name}`" in DOC
        for queue in topology.ALL_QUEUES:
            assert f"`{queue.name}`" in DOC

    @pytest.mark.parametrize(
        "kind",
        [
            params.RunListParams,
            params.KnifeParams,
            params.Cloud,
            params.CloudSpec,
            params.CloudAccess,
        ],
    )
    def test_every_params_field_is_documented(self, kind: type[params.Params]) -> None:
        section = DOC.split("#### Params", 1)[1].split("\n### ", 1)[0]
        for field in kind.__struct_fields__:
            assert f"`{field}`" in section, f"{kind.__name__}.{field} missing from docs/wire.md"

    def test_every_knife_cloud_is_documented(self) -> None:
        section = DOC.split("#### Params", 1)[1].split("\n### ", 1)[0]
        for cctype in typing.get_args(params.KnifeCloudType):
            assert f"`{cctype}`" in section

    def test_every_header_is_documented(self) -> None:
        section = DOC.split("## Message headers", 1)[1].split("\n## ", 1)[0]
        headers = [value for name, value in vars(wire).items() if name.endswith("_HEADER")]
        assert len(headers) == 6
        for header in headers:
            assert f"`{header}`" in section, f"{header} missing from docs/wire.md"

    def test_every_state_is_documented(self) -> None:
        for state in wire.JobState:
            assert f"`{state.value}`" in DOC
