"""The room's "Show me": each revealed question's evidence experiment, run once by the server for everyone.

In the single-player quiz every learner who presses **Show me** runs the experiment on their own machine. In a
class, the server runs it once, at the reveal, and sends the same `evidence` message (helpers.live_quiz.protocol)
to every student and instructor; one who joins later gets the stored copy. The experiment is blocking code that
starts its own servers on a private loop (`helpers.evidence.run`, bounded by its RUN_TIMEOUT), so it runs in a
worker thread: the quiz's loop keeps serving the room meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from helpers.evidence.core import RUN_TIMEOUT, Evidence, EvidenceError
from helpers.live_quiz import protocol as wire
from helpers.live_quiz.session import Round

__all__ = ["Runner", "ShowMe", "run_evidence"]

Runner = Callable[[str], Evidence]
Publish = Callable[[dict[str, Any]], None]


def run_evidence(name: str) -> Evidence:
    """`helpers.evidence.run(name)`, imported on first use: the experiments import Django and every lesson app."""
    from helpers import evidence

    return evidence.run(name)


class ShowMe:
    """Runs each revealed round's experiment at most once and keeps its message by round number.

    All methods are called on the server's loop; only the experiment itself runs in a worker thread.
    """

    def __init__(self, runner: Runner | None = run_evidence) -> None:
        self.runner = runner  # None: reveals run no experiment
        self.messages: dict[int, dict[str, Any]] = {}  # round number -> the evidence message sent
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, played: Round, publish: Publish) -> None:
        """Run `played`'s experiment in the background and `publish` its message; nothing if started already."""
        if self.runner is None or not played.question.evidence:
            return
        if played.number in self.messages or played.number in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(played, publish), name=f"show-me-{played.number}")
        self._tasks[played.number] = task
        task.add_done_callback(lambda _: self._tasks.pop(played.number, None))

    async def _run(self, played: Round, publish: Publish) -> None:
        try:
            assert self.runner is not None  # start() checked
            result = await asyncio.to_thread(self.runner, played.question.evidence)
            message = wire.evidence_message(played, result)
        except EvidenceError as exc:
            message = wire.evidence_message(played, None, str(exc))
        self.messages[played.number] = message
        publish(message)

    def message_for(self, played: Round) -> dict[str, Any] | None:
        """The evidence message of `played`, if its experiment has finished."""
        return self.messages.get(played.number)

    def running(self) -> list[Awaitable[None]]:
        """The experiments still running (to wait for before the server stops)."""
        return list(self._tasks.values())

    async def finish(self) -> None:
        """Wait for running experiments (each is bounded by the evidence RUN_TIMEOUT), so none outlives the room."""
        pending = self.running()
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), RUN_TIMEOUT + 5)
