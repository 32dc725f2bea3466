"""The id layout (Twitter's): properties that hold for every id, clock and batch size."""

from __future__ import annotations

import itertools

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megam import ids, snowflake
from megam.snowflake import (
    EPOCH_MS,
    IDS_PER_MS,
    ClockMovedBackwards,
    Generator,
    MustWait,
    decode,
    encode,
)
from tests.uid.conftest import START_MS, ManualClock
from uid import render

timestamps = st.integers(EPOCH_MS, EPOCH_MS + snowflake.MAX_TIMESTAMP_OFFSET)
nodes = st.integers(0, 31)
sequences = st.integers(0, 4095)


class TestEncodingAndDecoding:
    @given(timestamps, nodes, nodes, sequences)
    def test_decode_inverts_encode(self, ts: int, dc: int, worker: int, seq: int) -> None:
        assert decode(encode(ts, dc, worker, seq)) == snowflake.DecodedId(ts, dc, worker, seq)

    @given(st.integers(0, snowflake.MAX_ID))
    def test_encode_inverts_decode(self, value: int) -> None:
        fields = decode(value)
        assert (
            encode(fields.timestamp_ms, fields.datacenter_id, fields.worker_id, fields.sequence)
            == value
        )

    @given(timestamps, nodes, nodes, sequences)
    def test_ids_fit_in_a_signed_64_bit_long(self, ts: int, dc: int, worker: int, seq: int) -> None:
        assert 0 <= encode(ts, dc, worker, seq) < 2**63

    @given(timestamps, timestamps, nodes, nodes, sequences, sequences)
    def test_a_later_millisecond_sorts_after_any_id_of_an_earlier_one(
        self, ts1: int, ts2: int, dc: int, worker: int, seq1: int, seq2: int
    ) -> None:
        if ts1 < ts2:
            assert encode(ts1, 31, 31, seq1) < encode(ts2, dc, worker, seq2)

    def test_twitters_shifts(self) -> None:
        assert encode(EPOCH_MS + 1, 1, 1, 1) == (1 << 22) | (1 << 17) | (1 << 12) | 1

    def test_a_known_megam_id_decodes_to_its_time(self) -> None:
        fields = decode(431662859257118720)  # RIP431662859257118720 from Megam's own logs
        assert fields.time.isoformat() == "2014-02-07T05:37:00.212000+00:00"
        assert (fields.datacenter_id, fields.worker_id, fields.sequence) == (0, 0, 0)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((EPOCH_MS - 1, 0, 0, 0), "timestamp"),
            ((EPOCH_MS, 32, 0, 0), "datacenter"),
            ((EPOCH_MS, 0, 32, 0), "worker"),
            ((EPOCH_MS, 0, 0, 4096), "sequence"),
        ],
    )
    def test_fields_out_of_range_are_refused(self, args: tuple[int, ...], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            encode(*args)

    @pytest.mark.parametrize("value", [-1, 2**63])
    def test_decode_refuses_what_is_not_a_snowflake(self, value: int) -> None:
        with pytest.raises(ValueError, match="snowflake"):
            decode(value)

    @pytest.mark.parametrize(("worker", "dc"), [(32, 0), (-1, 0), (0, 32)])
    def test_a_generator_refuses_ids_outside_the_5_bit_fields(self, worker: int, dc: int) -> None:
        with pytest.raises(ValueError, match=r"must be in 0\.\.31"):
            Generator(worker, dc)


# A step of the clock (small steps back stay within the tolerance) and a request size.
steps = st.lists(st.tuples(st.integers(-3, 3), st.integers(1, 5000)), min_size=1, max_size=60)


class TestGeneratedIds:
    @settings(max_examples=200, deadline=None)
    @given(steps, nodes, nodes)
    def test_are_strictly_increasing_and_carry_the_clock_and_node(
        self, plan: list[tuple[int, int]], dc: int, worker: int
    ) -> None:
        clock = ManualClock()
        generator = Generator(worker, dc, clock=clock, backwards_tolerance_ms=5)
        issued: list[tuple[int, int]] = []  # (id, clock when issued)
        highest = clock()
        for step, count in plan:
            clock.advance(step)
            now = clock()
            highest = max(highest, now)
            try:
                run = generator.take(count)
            except MustWait:
                continue
            except ClockMovedBackwards:
                assert highest - now > 5  # refused only beyond the tolerance
                continue
            assert highest - now <= 5
            assert 1 <= len(run) <= min(count, IDS_PER_MS)
            issued.extend((value, clock()) for value in run)
        values = [value for value, _ in issued]
        assert all(a < b for a, b in itertools.pairwise(values))
        for value, now in issued:
            fields = decode(value)
            assert (fields.datacenter_id, fields.worker_id) == (dc, worker)
            assert START_MS - 3 <= fields.timestamp_ms <= now  # never ahead of the clock

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.integers(1, 3 * IDS_PER_MS), min_size=1, max_size=20))
    def test_a_millisecond_holds_at_most_4096_ids_and_a_run_is_consecutive(
        self, counts: list[int]
    ) -> None:
        clock = ManualClock()
        generator = Generator(7, 3, clock=clock)
        per_ms: dict[int, int] = {}
        for count in counts:
            while True:
                try:
                    run = generator.take(count)
                    break
                except MustWait:
                    clock.advance(1)
            assert list(run) == list(range(run.start, run.start + len(run)))
            ms = decode(run.start).timestamp_ms
            assert decode(run[-1]).timestamp_ms == ms
            per_ms[ms] = per_ms.get(ms, 0) + len(run)
        assert max(per_ms.values()) <= IDS_PER_MS


class TestBatchAnswers:
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.tuples(st.integers(0, snowflake.MAX_ID - 30_000), st.integers(1, 25_000)),
            max_size=4,
        )
    )
    def test_computed_json_equals_formatting_each_id(self, spans: list[tuple[int, int]]) -> None:
        runs = [range(start, start + length) for start, length in spans]
        expected = [value for run in runs for value in run]
        assert orjson.loads(render.batch_body(runs)) == {
            "ids": expected,
            "ids_str": [str(value) for value in expected],
        }

    def test_a_run_crossing_a_block_of_ten_thousand(self) -> None:
        runs = [range(9_995, 10_005), range(431662859257119995, 431662859257120003)]
        body = orjson.loads(render.batch_body(runs))
        assert body["ids_str"][4:6] == ["9999", "10000"]
        assert body["ids"][-4:-2] == [431662859257119999, 431662859257120000]


class TestMegamIds:
    @given(st.sampled_from(sorted(ids.PREFIXES)), st.integers(0, snowflake.MAX_ID))
    def test_parse_inverts_render(self, prefix: str, value: int) -> None:
        assert ids.parse(ids.render(prefix, value)) == ids.ParsedId(prefix, value)

    def test_a_bare_decimal_parses_without_prefix(self) -> None:
        assert ids.parse("431662859257118720") == ids.ParsedId(None, 431662859257118720)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("XYZ431662859257118720", "unknown id prefix"),
            ("RIP", "not a Megam id"),
            ("rip123", "not a Megam id"),
            ("12a", "not a Megam id"),
            ("-5", "not a Megam id"),
            ("9223372036854775808", "63-bit"),
            ("1" * 500, "not a Megam id"),
        ],
    )
    def test_malformed_ids_get_a_clear_error(self, text: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            ids.parse(text)

    def test_render_refuses_an_unknown_prefix(self) -> None:
        with pytest.raises(ValueError, match="unknown id prefix"):
            ids.render("ABC", 1)
