"""Reading a node's log: tail N, pages after a cursor, and a live SSE tail that resumes exactly."""

from __future__ import annotations

import asyncio
from typing import Any

from megam import hmac


async def with_lines(launched: Any, herk: Any, eventually: Any, count: int) -> tuple[Any, Any]:
    api, job = await launched()
    await herk.logs(job, [f"line {i}" for i in range(count)])

    async def stored() -> bool:
        page = await api.ok("/v1/nodes/web.local/logs", tail=count)
        return len(page["results"]) == count

    await eventually(stored)
    return api, job


class TestTail:
    async def test_tail_n_gives_the_last_n_lines_in_order(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await with_lines(launched, herk, eventually, 10)
        page = await api.ok("/v1/nodes/web.local/logs", tail=3)
        assert page["json_claz"] == "Megam::LogLineCollection"
        assert [line["text"] for line in page["results"]] == ["line 7", "line 8", "line 9"]
        last = page["results"][-1]
        assert page["cursor"] == last["id"]
        assert (last["job_id"], last["attempt"], last["seq"], last["stream"]) == (
            job["id"],
            1,
            9,
            "stdout",
        )

    async def test_the_default_tail_is_100_lines(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, _ = await with_lines(launched, herk, eventually, 120)
        page = await api.ok("/v1/nodes/web.local/logs")
        assert len(page["results"]) == 100
        assert page["results"][0]["text"] == "line 20"

    async def test_after_a_cursor_gives_only_newer_lines(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await with_lines(launched, herk, eventually, 3)
        cursor = (await api.ok("/v1/nodes/web.local/logs", tail=1))["cursor"]
        empty = await api.ok("/v1/nodes/web.local/logs", after=cursor)
        assert (empty["results"], empty["cursor"]) == ([], cursor)
        await herk.logs(job, ["fresh"], first_seq=3)

        async def newer() -> Any:
            page = await api.ok("/v1/nodes/web.local/logs", after=cursor)
            return page if page["results"] else None

        page = await eventually(newer)
        assert [line["text"] for line in page["results"]] == ["fresh"]

    async def test_tail_zero_gives_no_lines_but_a_cursor_to_follow_from(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, _ = await with_lines(launched, herk, eventually, 4)
        page = await api.ok("/v1/nodes/web.local/logs", tail=0)
        assert page["results"] == []
        assert page["cursor"] == (await api.ok("/v1/nodes/web.local/logs", tail=1))["cursor"]

    async def test_lines_can_be_limited_to_one_job(
        self, launched: Any, herk: Any, eventually: Any, job_of: Any
    ) -> None:
        api, _ = await with_lines(launched, herk, eventually, 2)
        [message] = await api.created(
            "/v1/requests/content", {"node_name": "web.local", "req_type": "delete"}
        )
        delete = await job_of(api, message["job_id"])
        await herk.logs(delete, ["deleting"])

        async def delete_lines() -> Any:
            page = await api.ok("/v1/nodes/web.local/logs", job=delete["id"])
            return page["results"]

        lines = await eventually(delete_lines)
        assert [line["text"] for line in lines] == ["deleting"]
        everything = await api.ok("/v1/nodes/web.local/logs")
        assert len(everything["results"]) == 3

    async def test_bad_parameters_are_400(self, launched: Any) -> None:
        api, _ = await launched()
        for params in ({"tail": "ten"}, {"tail": -1}, {"after": "x"}, {"job": "../etc"}):
            response = await api.get("/v1/nodes/web.local/logs", **params)
            assert response.status == 400, params


class TestLiveTail:
    async def test_replays_the_last_lines_then_follows(
        self, launched: Any, herk: Any, eventually: Any, open_stream: Any
    ) -> None:
        api, job = await with_lines(launched, herk, eventually, 10)
        stream = await open_stream(api, "web.local", tail=4)
        replay = await stream.lines(4)
        assert [e["json"]["text"] for e in replay] == ["line 6", "line 7", "line 8", "line 9"]
        assert [int(e["id"]) for e in replay] == [e["json"]["id"] for e in replay]
        await herk.logs(job, ["live 1", "live 2"], first_seq=10)
        live = await stream.lines(2)
        assert [e["json"]["text"] for e in live] == ["live 1", "live 2"]

    async def test_status_events_tell_when_the_job_ends(
        self, launched: Any, herk: Any, open_stream: Any
    ) -> None:
        api, job = await launched()
        stream = await open_stream(api, "web.local")
        first = await stream.status_where(lambda s: True)
        assert first["json"]["json_claz"] == "Megam::NodeStatus"
        assert first["json"]["status"] == "LAUNCHING"
        await herk.logs(job, ["converging"])
        await herk.status(job, "succeeded", seq=1, exit_code=0)
        done = await stream.status_where(lambda s: s["status"] == "RUNNING")
        [state] = done["json"]["jobs"]
        assert (state["job_id"], state["state"], state["exit_code"]) == (job["id"], "succeeded", 0)
        assert int(done["id"]) >= 1  # status events carry the cursor too

    async def test_resuming_with_last_event_id_has_no_gap_and_no_duplicate(
        self, launched: Any, herk: Any, open_stream: Any
    ) -> None:
        api, job = await launched()
        stream = await open_stream(api, "web.local")
        await herk.logs(job, [f"a{i}" for i in range(5)])
        seen = await stream.lines(5)
        stream.response.close()
        await herk.logs(job, [f"b{i}" for i in range(5)], first_seq=5)
        resumed = await open_stream(api, "web.local", headers={"Last-Event-ID": seen[2]["id"]})
        rest = await resumed.lines(7)
        texts = [e["json"]["text"] for e in seen[:3] + rest]
        assert texts == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]

    async def test_after_resumes_like_last_event_id(
        self, launched: Any, herk: Any, eventually: Any, open_stream: Any
    ) -> None:
        api, _ = await with_lines(launched, herk, eventually, 6)
        page = await api.ok("/v1/nodes/web.local/logs", tail=6)
        stream = await open_stream(api, "web.local", after=page["results"][3]["id"])
        assert [e["json"]["text"] for e in await stream.lines(2)] == ["line 4", "line 5"]

    async def test_many_batches_under_reconnects_arrive_exactly_once(
        self, launched: Any, herk: Any, open_stream: Any
    ) -> None:
        api, job = await launched()
        total, batch = 300, 10

        async def produce() -> None:
            for start in range(0, total, batch):
                await herk.logs(
                    job, [f"n{i}" for i in range(start, start + batch)], first_seq=start
                )
                await asyncio.sleep(0)

        producer = asyncio.create_task(produce())
        received: list[dict[str, Any]] = []
        last_id: str | None = None
        while len(received) < total:
            # the first connection reads from the very start; later ones resume
            resume = {"headers": {"Last-Event-ID": last_id}} if last_id else {"after": 0}
            stream = await open_stream(api, "web.local", **resume)
            for event in await stream.lines(min(37, total - len(received))):
                received.append(event)
                last_id = event["id"]
            stream.response.close()
        await producer
        assert [e["json"]["seq"] for e in received] == list(range(total))

    async def test_an_idle_stream_sends_keep_alive_comments(
        self, launched: Any, open_stream: Any
    ) -> None:
        api, _ = await launched()
        stream = await open_stream(api, "web.local")
        await stream.status_where(lambda s: True)
        async with asyncio.timeout(10):
            while await stream.response.content.readline() != b": keep-alive\n":
                pass

    async def test_a_bad_last_event_id_is_400(self, launched: Any) -> None:
        api, _ = await launched()
        path = "/v1/nodes/web.local/logs/stream"
        response = await api.client.get(
            path, headers={**api.headers(path), "Last-Event-ID": "yesterday"}
        )
        assert response.status == 400


class TestWebSocketTail:
    async def test_replays_follows_and_resumes_after_a_cursor(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await with_lines(launched, herk, eventually, 5)
        path = "/v1/nodes/web.local/logs/ws"

        async def receive(socket: Any, kind: str) -> dict[str, Any]:
            while True:
                message = await socket.receive_json(timeout=10)
                if message["type"] == kind:
                    return message

        first = hmac.request_target(path, {"tail": 2})
        socket = await api.client.ws_connect(first, headers=api.headers(first))
        replay = [await receive(socket, "line") for _ in range(2)]
        assert [m["line"]["text"] for m in replay] == ["line 3", "line 4"]
        status = await receive(socket, "status")
        assert status["status"]["status"] == "LAUNCHING"
        await herk.logs(job, ["live"], first_seq=5)
        assert (await receive(socket, "line"))["line"]["text"] == "live"
        await socket.close()

        again = hmac.request_target(path, {"after": replay[0]["cursor"]})
        resumed = await api.client.ws_connect(again, headers=api.headers(again))
        texts = [(await receive(resumed, "line"))["line"]["text"] for _ in range(2)]
        assert texts == ["line 4", "live"]
        await resumed.close()


class TestSearch:
    async def test_finds_lines_with_all_words_across_nodes_newest_first(
        self, gateway: Any, herk: Any, eventually: Any, job_of: Any
    ) -> None:
        api = await gateway.tenant()
        first, second = await api.launch("a.local"), await api.launch("b.local")
        job_a, job_b = await job_of(api, first[0]), await job_of(api, second[0])
        await herk.logs(job_a, ["FATAL: 401 Unauthorized from the chef server", "all good"])
        await herk.logs(job_b, ["WARN: retrying", "FATAL: 401 again"])

        async def hits() -> Any:
            found = await api.ok("/v1/logs/search", q="fatal 401")
            return found["results"] if len(found["results"]) == 2 else None

        results = await eventually(hits)
        assert [(r["node_name"], r["text"]) for r in results] == [
            ("b.local", "FATAL: 401 again"),
            ("a.local", "FATAL: 401 Unauthorized from the chef server"),
        ]
        assert results[0]["job_state"] == "queued"

    async def test_filters_by_node_job_state_and_time(
        self, gateway: Any, herk: Any, eventually: Any, job_of: Any
    ) -> None:
        api = await gateway.tenant()
        job_a = await job_of(api, (await api.launch("a.local"))[0])
        job_b = await job_of(api, (await api.launch("b.local"))[0])
        await herk.logs(job_a, ["boom here"])
        await herk.logs(job_b, ["boom there"])
        await herk.status(job_b, "failed", seq=1)

        async def failed_only() -> Any:
            found = await api.ok("/v1/logs/search", q="boom", state="failed")
            return found["results"] or None

        [hit] = await eventually(failed_only)
        assert hit["node_name"] == "b.local"
        by_node = await api.ok("/v1/logs/search", q="boom", node="a.local")
        assert [r["text"] for r in by_node["results"]] == ["boom here"]
        by_job = await api.ok("/v1/logs/search", q="boom", job=job_a["id"])
        assert [r["node_name"] for r in by_job["results"]] == ["a.local"]
        future = await api.ok("/v1/logs/search", q="boom", since=4102444800)
        assert future["results"] == []

    async def test_search_syntax_in_the_words_is_taken_literally(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.logs(job, ['say "NEAR" -x OR y: z*'])

        async def literal() -> Any:
            found = await api.ok("/v1/logs/search", q='"NEAR" -x OR y: z*')
            return found["results"] or None

        assert len(await eventually(literal)) == 1

    async def test_a_search_needs_words(self, launched: Any) -> None:
        api, _ = await launched()
        assert (await api.get("/v1/logs/search")).status == 400
        assert (await api.get("/v1/logs/search", q="x", state="bogus")).status == 400
