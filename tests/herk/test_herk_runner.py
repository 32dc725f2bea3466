"""The runner and the log stream, without a bus: what a job's process prints and how it ends."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from herk_testkit import alive, kill_quietly, wait_dead

from herk.control import JobControl, StopReason
from herk.logstream import LogStream
from herk.runner import MAX_LINE_BYTES, Ending, run_process
from megam.wire import LogLine


class Collected:
    """A LogStream whose batches are kept instead of published."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.batches: list[list[LogLine]] = []
        self.stream = LogStream(self.batches.append, secrets)

    @property
    def lines(self) -> list[LogLine]:
        return [line for batch in self.batches for line in batch]

    def texts(self, stream: str) -> list[str]:
        return [line.text for line in self.lines if line.stream == stream]


def run(script: str, collected: Collected, **options) -> object:
    control = options.pop("control", JobControl())
    result = run_process(
        [sys.executable, "-c", script],
        env={"PATH": os.environ["PATH"]},
        cwd=None,
        timeout=options.pop("timeout", 30),
        kill_grace=options.pop("kill_grace", 1),
        control=control,
        sink=collected.stream,
    )
    collected.stream.flush()
    return result


class TestOutput:
    def test_both_pipes_arrive_line_by_line_numbered_in_order(self) -> None:
        collected = Collected()
        result = run(
            "import sys\n"
            "for i in range(3):\n"
            "    print(f'out {i}', flush=True)\n"
            "    print(f'err {i}', file=sys.stderr, flush=True)\n"
            "sys.stdout.write('no newline at the end')\n",
            collected,
        )
        assert result.ending is Ending.EXITED and result.exit_code == 0
        assert collected.texts("stdout") == ["out 0", "out 1", "out 2", "no newline at the end"]
        assert collected.texts("stderr") == ["err 0", "err 1", "err 2"]
        assert [line.seq for line in collected.lines] == list(range(1, 8))
        assert result.last_stderr == "err 2"

    def test_batches_hold_at_most_100_lines(self) -> None:
        collected = Collected()
        run("for i in range(250): print(i)", collected)
        assert [line.text for line in collected.lines] == [str(i) for i in range(250)]
        assert max(len(batch) for batch in collected.batches) == 100

    def test_a_huge_line_is_cut_into_pieces(self) -> None:
        collected = Collected()
        run(f"print('x' * {MAX_LINE_BYTES * 2 + 10})", collected)
        assert [len(text) for text in collected.texts("stdout")] == [
            MAX_LINE_BYTES,
            MAX_LINE_BYTES,
            10,
        ]

    def test_secrets_are_masked_in_every_line(self) -> None:
        collected = Collected(secrets=("hunter2-password",))
        run("import sys; print('token=hunter2-password', file=sys.stderr)", collected)
        assert collected.texts("stderr") == ["token=****"]

    def test_a_slow_line_is_published_without_waiting_for_more(self) -> None:
        """A lone line goes out after at most 50 ms, not when the batch fills or the job ends."""
        published = threading.Event()
        stream = LogStream(lambda batch: published.set(), ())
        seen_while_running = []
        control = JobControl()

        def watch() -> None:
            seen_while_running.append(published.wait(20))
            control.request_stop(StopReason.CANCELLED)

        watcher = threading.Thread(target=watch)
        watcher.start()
        run_process(
            [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"],
            env={"PATH": os.environ["PATH"]},
            cwd=None,
            timeout=60,
            kill_grace=1,
            control=control,
            sink=stream,
        )
        watcher.join()
        assert seen_while_running == [True]


class TestEndings:
    def test_a_failing_command_reports_its_exit_code(self) -> None:
        result = run("import sys; print('bad', file=sys.stderr); sys.exit(3)", Collected())
        assert (result.ending, result.exit_code, result.last_stderr) == (Ending.EXITED, 3, "bad")

    def test_a_missing_program_is_reported_not_raised(self) -> None:
        result = run_process(
            ["/nonexistent/knife"],
            env={},
            cwd=None,
            timeout=5,
            kill_grace=1,
            control=JobControl(),
            sink=Collected().stream,
        )
        assert result.ending is Ending.NOT_STARTED
        assert "cannot start '/nonexistent/knife'" in result.detail

    def test_cancel_terminates_the_group(self) -> None:
        control = JobControl()
        threading.Timer(0.3, control.request_stop, (StopReason.CANCELLED, "ops")).start()
        result = run("import time; time.sleep(60)", Collected(), control=control)
        assert result.ending is Ending.STOPPED and result.stop_reason is StopReason.CANCELLED

    async def test_leftovers_of_the_group_die_with_the_job(self, tmp_path: Path) -> None:
        pid_file = tmp_path / "bg.pid"
        result = run(
            "import subprocess\n"
            "p = subprocess.Popen(['sleep', '600'])\n"  # inherits our pipes and our group
            f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n",
            Collected(),
        )
        background = int(pid_file.read_text())
        try:
            assert result.exit_code == 0
            assert await wait_dead([background]) == []
        finally:
            kill_quietly([background])

    def test_a_process_that_left_the_group_cannot_hold_the_job_open(self, tmp_path: Path):
        pid_file = tmp_path / "daemon.pid"
        result = run(
            "import subprocess\n"
            "p = subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
            f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n",
            Collected(),
        )
        daemon = int(pid_file.read_text())
        try:
            assert result.ending is Ending.EXITED and result.exit_code == 0
            assert alive(daemon), "a process in its own session is not the job's to kill"
        finally:
            kill_quietly([daemon])
