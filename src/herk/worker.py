"""The worker actor: one pykka thread that runs one job at a time as a subprocess.

The master sends :class:`RunJob` with ``tell()`` once the job may start (its ``running`` status
is the master's business). The worker runs the plan, streams the output, and hands the
:class:`Outcome` back through ``resolve``; the master publishes the terminal status. An exception
escaping a job kills this actor (pykka's rule for ``tell``): ``on_failure`` reports it to the
master, which records the job ``interrupted`` and starts a replacement.
"""

from __future__ import annotations

import dataclasses
import shlex
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka
import structlog

from herk import plans, runner
from herk.admission import Job
from herk.chef import CredentialsError
from herk.control import JobControl, StopReason
from herk.events import EventPublisher
from herk.logstream import LogStream
from herk.orphans import GroupRegistry
from herk.outcome import Outcome
from megam import log
from megam.wire import JobState

logger = log.get("herk.worker")


@dataclasses.dataclass(frozen=True, slots=True)
class RunJob:
    job: Job
    control: JobControl
    resolve: Callable[[Outcome], None]


class JobWorker(pykka.ThreadingActor):
    # A worker stuck in a job must not keep the process alive once the master gave up on it.
    use_daemon_thread = True

    def __init__(
        self,
        number: int,
        herk: str,
        events: EventPublisher,
        data_dir: Path,
        groups: GroupRegistry,
        on_death: Callable[[BaseException | None], None],
    ) -> None:
        super().__init__()
        self.number = number
        self.herk = herk
        self.events = events
        self.data_dir = data_dir
        self.groups = groups
        self.on_death = on_death

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, RunJob):
            raise TypeError(f"worker {self.number} cannot handle {type(message).__name__}")
        job = message.job
        # Context variables do not cross into this thread: bind the job's identity here.
        with structlog.contextvars.bound_contextvars(
            job_id=job.job_id, node=job.request.node, herk=self.herk, worker=self.number
        ):
            message.resolve(self.run(job, message.control))

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.on_death(exc)

    def run(self, job: Job, control: JobControl) -> Outcome:
        logger.info("job.started", type=job.request.type, attempt=job.request.attempt)
        try:
            with plans.plan(job, self.data_dir) as plan:
                if plan.argv is None:
                    return Outcome(JobState.SUCCEEDED)
                return self._run_process(job, plan, control)
        except (CredentialsError, OSError) as exc:
            return Outcome(JobState.FAILED, f"cannot prepare the job: {exc}", started=False)

    def _run_process(self, job: Job, plan: plans.Plan, control: JobControl) -> Outcome:
        assert plan.argv is not None
        # Never waits for the broker: the lines queue in the outbox while it is away.
        stream = LogStream(lambda lines: self.events.logs_soon(job.identity, lines), plan.secrets)
        stream.line("herk", f"$ {shlex.join(plan.argv)}")
        with self.groups.recording(job.job_id) as record:
            result = runner.run_process(
                plan.argv,
                env=plan.env,
                cwd=plan.cwd,
                timeout=plan.timeout,
                kill_grace=plan.kill_grace,
                control=control,
                sink=stream,
                on_started=record,
            )
        outcome = interpret(result, plan, self.herk, stream.mask)
        if dropped := self.events.dropped_batches(job.job_id):
            stream.line("herk", not_kept(dropped))
        stream.line("herk", f"{outcome.state}: {outcome.reason or 'exit code 0'}")
        logger.info("job.finished", state=str(outcome.state), duration=round(result.duration, 3))
        return dataclasses.replace(outcome, tail=tuple(stream.take()))


def not_kept(batches: int) -> str:
    return (
        f"{batches} batch(es) of this job's log lines were not kept: herk's event buffer was "
        "full while the broker was away (the job itself ran on)"
    )


def worker_factory(
    herk: str, events: EventPublisher, data_dir: Path, groups: GroupRegistry
) -> Callable[[int, Callable[[BaseException | None], None]], pykka.ActorRef[Any]]:
    """How the node's pool starts a worker: ``factory(number, on_death)`` (herk.pool)."""

    def start(number: int, on_death: Callable[[BaseException | None], None]) -> pykka.ActorRef[Any]:
        return JobWorker.start(number, herk, events, data_dir, groups, on_death)

    return start


def interpret(
    result: runner.ProcessResult, plan: plans.Plan, herk: str, mask: Callable[[str], str]
) -> Outcome:
    duration = result.duration
    if result.ending is runner.Ending.NOT_STARTED:
        return Outcome(JobState.FAILED, result.detail, None, duration, started=False)
    if result.ending is runner.Ending.TIMED_OUT:
        return Outcome(
            JobState.TIMED_OUT,
            f"timed out after {plan.timeout:g} s; its process group was killed",
            result.exit_code,
            duration,
        )
    if result.ending is runner.Ending.STOPPED:
        if result.stop_reason is StopReason.CANCELLED:
            return Outcome(
                JobState.CANCELLED, "cancelled while running", result.exit_code, duration
            )
        return Outcome(
            JobState.INTERRUPTED,
            f"herk node {herk} stopped before the job finished",
            result.exit_code,
            duration,
        )
    code = result.exit_code
    if code == 0:
        return Outcome(JobState.SUCCEEDED, "", 0, duration)
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return Outcome(JobState.FAILED, f"killed by signal {name}", code, duration)
    last = mask(result.last_stderr).strip()
    reason = f"exit code {code}: {last}" if last else f"exit code {code}"
    return Outcome(JobState.FAILED, reason[:1000], code, duration)
