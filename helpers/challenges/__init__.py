"""Coding challenges checked by live clients: the mechanism, Part 1's (notebook 12) and Part 2's (notebook 19).

- `core`: the registry, the `Report` checklist, the bounded check, and what the checkers share;
- `basics`: Part 1's seven fix-the-server challenges (notebook 12_coding_challenges.ipynb);
- `production`: Part 2's five production challenges (notebook 19_challenges_production.ipynb), with
  `production_chat`, the chat whose missing test its fifth challenge asks for.

This package's own names are Part 1's, as they were before Part 2 existed (`from helpers.challenges import check`
checks notebook 12's challenges); notebook 19 imports from `helpers.challenges.production`.
"""

from helpers.challenges.basics import (
    CHALLENGES,
    LOOKUP_SECONDS,
    MEMBERS,
    challenge,
    check,
    load,
    load_file,
    path,
    slow_lookup,
    source,
    wrong_solutions,
)
from helpers.challenges.core import CHALLENGE_DIR, CHECK_TIMEOUT, ROOT, Challenge, ChallengeError, Checker, Item, Report

__all__ = [
    "CHALLENGES",
    "CHALLENGE_DIR",
    "CHECK_TIMEOUT",
    "LOOKUP_SECONDS",
    "MEMBERS",
    "ROOT",
    "Challenge",
    "ChallengeError",
    "Checker",
    "Item",
    "Report",
    "challenge",
    "check",
    "load",
    "load_file",
    "path",
    "slow_lookup",
    "source",
    "wrong_solutions",
]
