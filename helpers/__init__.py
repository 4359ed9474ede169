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
- `redis_server`: a throwaway redis-server on loopback for multi-process lessons;
- `fanout`: the recommended broadcast (bounded queue + writer task per client);
- `demo_apps`: small example servers (echo, a FanOut chat) used by tests and benchmarks;
- `chat_connection`: one chat client's connection, thread and messages, without widgets; `widgets`: its view,
  the chat widgets; `classroom`: the classroom server;
- `quiz/` (data, scoring, view, progress, session, countdown, controls, widget): timed quizzes;
  `evidence/` (core, shared, channels, broadcasting): the live experiments that settle their options;
  `slow_clients`: the never-reading client those experiments and the challenges use;
  `challenges`: checked coding challenges;
- `summary`: a lesson's Summary table, each row checked by the notebook's code;
- `usage`: argument checks whose errors say what to pass instead.

Every module lists its public names in `__all__`; the notebooks use only those (tests/test_public_names.py).
"""
