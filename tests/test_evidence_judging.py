"""Tests for helpers.evidence.judging: a run read against a question's options, and Show me from a notebook cell."""

from __future__ import annotations

import pytest

from helpers.evidence import Evidence, judge, judging
from helpers.quiz import Question, load_quiz

QUESTION = load_quiz("production").question("resume-since")  # options A-D, a single key
KEY = "".join(letter for letter in QUESTION.letters if letter in QUESTION.correct)
OTHERS = "".join(letter for letter in QUESTION.letters if letter not in QUESTION.correct)


def claims(question: Question, letters: str) -> frozenset[str]:
    return frozenset(o.claim for o in question.options if o.letter in letters)


def result_for(question: Question, shown: str, refuted: str) -> Evidence:
    return Evidence("probe", "a probe", ("line one",), claims(question, shown), refutes=claims(question, refuted))


def test_a_run_that_shows_the_key_and_refutes_the_rest_settles_the_question() -> None:
    """Letters come in option order, and `settled` holds when demonstrated == key and refuted == the others."""
    judged = judge(QUESTION, result_for(QUESTION, KEY, OTHERS))
    assert (judged.demonstrated, judged.refuted) == (tuple(KEY), tuple(OTHERS))
    assert (judged.key, judged.others) == (tuple(KEY), tuple(OTHERS))
    assert judged.settled


def test_a_distractor_left_untested_does_not_settle_it() -> None:
    """A run that refutes all but one distractor (or shows a distractor) leaves the question unsettled."""
    assert not judge(QUESTION, result_for(QUESTION, KEY, OTHERS[1:])).settled
    assert not judge(QUESTION, result_for(QUESTION, KEY + OTHERS[0], OTHERS[1:])).settled


def test_show_me_prints_the_facts_then_the_judgement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """show_me runs the question's experiment and prints its report, then demonstrated, refuted and the key."""
    canned = result_for(QUESTION, KEY, OTHERS)
    asked: list[str] = []
    monkeypatch.setattr(judging, "run", lambda name, timeout: asked.append(name) or canned)
    assert judging.show_me(QUESTION) is canned
    assert asked == [QUESTION.evidence]
    assert capsys.readouterr().out.splitlines() == [
        "Show me: a probe",
        "  line one",
        "",
        f"demonstrated: {list(KEY)}",
        f"refuted:      {list(OTHERS)}",
        f"the key:      {list(KEY)}",
    ]
