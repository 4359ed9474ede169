"""Tests for helpers.evidence: every keyed answer is demonstrated by its live experiment and every other one refuted;
the Trial each experiment runs in serves, settles and stops as it says."""

from __future__ import annotations

import re
import threading

import pytest

from helpers import evidence, nginx, quiz, redis_server
from helpers.demo_apps import echo
from helpers.evidence import core
from helpers.quiz import Question
from helpers.servers import running_servers
from tests.support import Snapshot, require_binary

pytestmark = pytest.mark.timeout(60)

QUESTIONS = [q for name in ("channels", "broadcasting", "production") for q in quiz.load_quiz(name).questions]


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """Run one Channels experiment first: Django's set-up and asgiref's shared worker thread stay for the process."""
    evidence.run("anonymous_user")


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_the_experiment_demonstrates_the_key_and_refutes_every_other_option(
    question: Question, no_leaks: Snapshot
) -> None:
    """The live run demonstrates exactly the keyed options' claims and refutes the claim of every other option."""
    if question.evidence == "cross_loop" and not redis_server.available():
        require_binary("redis-server", "apt-get install redis-server, or set REDIS_URL")
    if question.evidence in evidence.production_edges.NEEDS_NGINX and not nginx.available():
        require_binary("nginx", "apt-get install nginx")
    result = evidence.run(question.evidence)
    judged = evidence.judge(question, result)
    assert judged.demonstrated == judged.key, (
        f"{question.id}: the key says {list(judged.key)}, the experiment demonstrated "
        f"{list(judged.demonstrated)} (claims {sorted(result.shows)})\n{result.fact}"
    )
    assert judged.refuted == judged.others, (
        f"{question.id}: every distractor must be refuted by the run; refuted {list(judged.refuted)}, untested "
        f"{sorted(set(judged.others) - set(judged.refuted))} (refuted claims {sorted(result.refutes)})\n{result.fact}"
    )
    assert judged.settled


def test_an_experiment_cannot_both_demonstrate_and_refute_a_claim() -> None:
    """Evidence that shows and refutes the same claim is an error in the experiment, reported at once."""
    with pytest.raises(evidence.EvidenceError, match="both demonstrated and refuted"):
        evidence.Evidence("x", "t", (), frozenset({"a"}), refutes=frozenset({"a", "b"}))


def test_every_experiment_backs_some_question() -> None:
    """No experiment is orphaned: each registered name is the evidence of at least one question."""
    assert set(evidence.names()) == {q.evidence for q in QUESTIONS}


@pytest.mark.parametrize("name", ["refuse_vs_silence", "manager_count"])
def test_facts_name_no_ports_addresses_or_timings(name: str) -> None:
    """A fact is printable in a notebook as is: no loopback ports, memory addresses or millisecond timings."""
    fact = evidence.run(name).fact
    assert fact.startswith("Show me: ")
    assert not re.search(r"127\.0\.0\.1:\d+|0x[0-9a-f]{6,}|\d+(\.\d+)? ?ms\b", fact)


def test_an_unknown_experiment_lists_the_known_ones() -> None:
    """run('nope') raises an error that lists the experiment names."""
    with pytest.raises(evidence.EvidenceError, match="known experiments: accept_opens, "):
        evidence.run("nope")


def test_a_trial_serves_under_its_name_and_the_server_stops_after_the_block(no_leaks: Snapshot) -> None:
    """Trial.serve() runs the app as "evidence-<name>" and the with-block stops it, so no experiment leaves one up."""
    trial = core.Trial("probe", "a probe")
    with trial.serve(echo) as server:
        assert running_servers()[trial.server_name] == server.url
        assert trial.server_name == "evidence-probe"
    assert trial.server_name not in running_servers()


def test_a_trial_settles_every_claim_and_heads_the_fact_lines() -> None:
    """Trial.settle() demonstrates the claims that held, refutes the rest, and prints `head` before the lines."""
    trial = core.Trial("probe", "a probe", head=("server: test",))
    result = trial.settle(["saw: 1"], {"held": True, "failed": False}, seen=1)
    assert (result.name, result.shows, result.refutes) == ("probe", {"held"}, {"failed"})
    assert result.lines == ("server: test", "saw: 1")
    assert result.value == {"seen": 1}
    assert result.fact == "Show me: a probe\n  server: test\n  saw: 1"


def test_an_experiment_runs_its_setup_first_on_its_thread_and_receives_its_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """experiment(setup=..., head=...) registers under the name without "_", calls setup on the run's thread first."""
    monkeypatch.setattr(core, "EXPERIMENTS", {})
    calls: list[str] = []

    @core.experiment("a probe", setup=lambda: calls.append(threading.current_thread().name), head=["head line"])
    async def _probe(trial: core.Trial) -> evidence.Evidence:
        calls.append(f"ran {trial.name}")
        return trial.settle(["body line"], {"ran": True})

    result = evidence.run("probe")
    assert calls == ["evidence-probe", "ran probe"]
    assert result.lines == ("head line", "body line") and result.shows == {"ran"}
    assert core.names() == ["probe"]
