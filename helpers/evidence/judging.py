"""What one run of an experiment says about a quiz question's options: which it demonstrated, which it refuted.

A question's option names the claim that would make it true; an experiment's `Evidence` lists the claims it
demonstrated and refuted. `judge()` reads one against the other in letters, `settled` says whether the run
demonstrated exactly the key and refuted every other option (the rule every quiz question is held to), and
`show_me()` runs a question's experiment from a notebook cell and prints that judgement under its facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from helpers.evidence.core import RUN_TIMEOUT, Evidence, run

if TYPE_CHECKING:
    from helpers.quiz.data import Question

__all__ = ["Judgement", "judge", "show_me"]


@dataclass(frozen=True)
class Judgement:
    """A question's option letters, in option order: those the run demonstrated and refuted, the key, the rest."""

    demonstrated: tuple[str, ...]
    refuted: tuple[str, ...]
    key: tuple[str, ...]
    others: tuple[str, ...]

    @property
    def settled(self) -> bool:
        """The run demonstrated exactly the keyed options and refuted every other one."""
        return self.demonstrated == self.key and self.refuted == self.others


def judge(question: Question, result: Evidence) -> Judgement:
    """Read `result` against `question`'s options (letters in option order)."""
    return Judgement(
        demonstrated=tuple(o.letter for o in question.options if o.claim in result.shows),
        refuted=tuple(o.letter for o in question.options if o.claim in result.refutes),
        key=tuple(letter for letter in question.letters if letter in question.correct),
        others=tuple(letter for letter in question.letters if letter not in question.correct),
    )


def show_me(question: Question, timeout: float = RUN_TIMEOUT) -> Evidence:
    """Run `question`'s experiment; print its facts, then which options it demonstrated and refuted, and the key."""
    result = run(question.evidence, timeout=timeout)
    judgement = judge(question, result)
    print(result.fact)
    print()
    print("demonstrated:", list(judgement.demonstrated))
    print("refuted:     ", list(judgement.refuted))
    print("the key:     ", list(judgement.key))
    return result
