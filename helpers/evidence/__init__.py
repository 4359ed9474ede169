"""The quizzes' "Show me" experiments: each one runs a real server and real clients and reports what happened.

Every experiment is a small async function registered under a name (the `evidence` field of a quiz question).
`run(name)` executes it on a private event loop in a worker thread, so it works from a notebook cell (whose
thread already runs the kernel's loop), from the quiz widget's background thread and from plain tests alike,
and it waits a bounded time. Servers are served on loopback under names starting with "evidence-" and are
always stopped before the experiment returns.

An experiment returns an `Evidence`: printable fact lines (no ports, timings or addresses), `shows`, the set of
*claims* the run demonstrated, and `refutes`, the claims it showed to be false. A quiz option names the claim
that would make it true, so tests can check that the run demonstrates exactly the keyed options and refutes
every other one: the code, not the author, decides which answer is right.

Each experiment receives a `Trial`: it serves the experiment's servers under its name and settles its claims, so
the experiment's code states only what it sets up and observes. The experiments live by quiz:
`helpers.evidence.channels`, `helpers.evidence.broadcasting`, and for the production quiz
`helpers.evidence.production_servers` (lessons 13-15), `helpers.evidence.production_edges` (16) and
`helpers.evidence.production_auth` (17); the pieces they share are in `helpers.evidence.shared`, and the
never-reading client of the slow-client experiments in `helpers.slow_clients`. `helpers.evidence.judging` reads a
run against a question's options (`judge`, and `show_me` for a notebook cell).
"""

# importing the quiz modules registers their experiments
from helpers.evidence import broadcasting, channels, production_auth, production_edges, production_servers  # noqa: F401
from helpers.evidence.core import EXPERIMENTS, RUN_TIMEOUT, Evidence, EvidenceError, Trial, experiment, names, run
from helpers.evidence.judging import Judgement, judge, show_me

__all__ = [
    "EXPERIMENTS",
    "RUN_TIMEOUT",
    "Evidence",
    "EvidenceError",
    "Judgement",
    "Trial",
    "experiment",
    "judge",
    "names",
    "run",
    "show_me",
]
