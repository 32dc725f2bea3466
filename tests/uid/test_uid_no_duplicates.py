"""No duplicate ids among millions, from many threads sharing a generator and from several
processes that each lease their own worker id."""

from __future__ import annotations

import array
import asyncio
import itertools
import subprocess
import sys
import threading
from pathlib import Path

from megam.snowflake import Generator, decode

WORKER_PROGRAM = Path(__file__).with_name("worker_process.py")


def strictly_increasing(values: list[int] | array.array) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


class TestNoDuplicates:
    def test_eight_threads_sharing_one_generator(self) -> None:
        generator = Generator(worker_id=5, datacenter_id=2)
        per_thread = 250_000
        results: list[list[int]] = []

        def issue() -> None:
            next_id = generator.next_id
            results.append([next_id() for _ in range(per_thread)])

        threads = [threading.Thread(target=issue) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(results) == 8
        assert all(strictly_increasing(ids) for ids in results)  # per thread, in call order
        every = [value for ids in results for value in ids]
        assert len(set(every)) == len(every) == 2_000_000
        assert generator.ids_issued == 2_000_000

    async def test_threads_and_asyncio_tasks_drawing_singles_and_batches_together(self) -> None:
        generator = Generator(worker_id=1)
        from_threads: list[list[int]] = []

        def issue() -> None:
            from_threads.append([generator.next_id() for _ in range(200_000)])

        async def batches() -> list[int]:
            drawn: list[int] = []
            for _ in range(20):
                runs = await generator.take_async(1_000)
                drawn.extend(value for run in runs for value in run)
                drawn.append(await generator.next_id_async())
            return drawn

        threads = [threading.Thread(target=issue) for _ in range(4)]
        for thread in threads:
            thread.start()
        from_tasks = await asyncio.gather(*(batches() for _ in range(50)))
        for thread in threads:
            await asyncio.to_thread(thread.join, 60)
        streams = from_threads + from_tasks
        assert all(strictly_increasing(ids) for ids in streams)
        every = [value for ids in streams for value in ids]
        assert len(every) == 4 * 200_000 + 50 * 20 * 1_001
        assert len(set(every)) == len(every)

    def test_four_processes_with_leased_worker_ids(self, tmp_path: Path) -> None:
        per_process = 500_000
        outputs = [tmp_path / f"ids-{n}.bin" for n in range(4)]
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER_PROGRAM),
                    "write-ids",
                    str(tmp_path / "leases"),
                    str(per_process),
                    str(out),
                    str(len(outputs)),
                ]
            )
            for out in outputs
        ]
        try:
            assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]
        finally:
            for process in processes:
                process.kill()  # no-op for those that exited
        every = array.array("q")
        workers = set()
        for out in outputs:
            ids = array.array("q", out.read_bytes())
            assert len(ids) == per_process
            assert strictly_increasing(ids)
            workers.add(decode(ids[0]).worker_id)
            every.extend(ids)
        assert len(workers) == 4  # each process leased an id of its own
        assert len(set(every)) == len(every) == 2_000_000
