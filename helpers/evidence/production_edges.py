"""Evidence for the production quiz's questions on lessons 16-17 (quizzes/production.toml): proxies, workers, TLS
and authentication."""

from __future__ import annotations
