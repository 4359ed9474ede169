"""Helpers for the live WebSocket lab: real servers, real clients, and the course's interactive parts.

One concept per module:
- `servers`: uvicorn in a thread (default), on the caller's loop, or in a child process (`process_entry` is
  the child's entry point);
- `server_logs`: each server's log records kept on the server instead of printed under a random cell;
- `clients`: `websockets` clients with short timeouts, `attempt()` -> what the client saw, and the one wording of
  closes and failed handshakes;
- `loops`: which event loop is this, crossing between loops safely, and the one way to run work on a worker
  thread with a time limit;
- `django_env`: Django + Channels configured inside a kernel; logged-in clients;
- `spawn`: child processes that die with this one (started from one lasting thread);
- `redis_server`: a throwaway redis-server on loopback for multi-process lessons;
- `nginx`: a throwaway nginx on loopback in front of the lesson's servers (lesson 16: a real reverse proxy);
- `faults/` (relay, child_client): peers that go silent without closing: a TCP relay that freezes, cuts or
  closes, and a `websockets` client in a child process that can be paused with SIGSTOP;
- `fanout`: the recommended broadcast (bounded queue + writer task per client);
- `resume`: a numbered broadcast with a bounded history, so a reconnecting client gets what it missed;
- `demo_apps`: small example servers (echo, a FanOut chat) used by tests and benchmarks;
- `chat_connection`: one chat client's connection, thread and messages, without widgets; `widgets`: its view,
  the chat widgets; `classroom`: the classroom server;
- `quiz/` (data, scoring, view, progress, session, countdown, controls, widget): timed quizzes;
  `evidence/` (core, shared, channels, broadcasting): the live experiments that settle their options;
  `slow_clients`: the never-reading client those experiments and the challenges use;
  `challenges`: checked coding challenges;
- `live_quiz/` (session, protocol, app, handle, export, views): a quiz for a whole class at once, over the
  classroom's join code and limits: the instructor pushes a question, students answer on their own connections;
- `summary`: a lesson's Summary table, each row checked by the notebook's code;
- `pytest_runs/` (record, inline, project): a learner's own tests run in the kernel with ipytest or as a
  child `pytest`, each test's outcome recorded for the notebook to check;
- `usage`: argument checks whose errors say what to pass instead.

Every module lists its public names in `__all__`; the notebooks use only those (tests/test_public_names.py).
"""
