"""Evidence for the production quiz's questions on lessons 13-15 (quizzes/production.toml): servers compared,
testing, dead peers and reconnection."""

from __future__ import annotations
