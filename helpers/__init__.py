"""Helpers for the live WebSocket lab: real servers, real clients, and the course's interactive parts.

One concept per module:
- `servers`: uvicorn in a thread (default), on the caller's loop, or in a child process;
- `server_logs`: each server's log records kept on the server instead of printed under a random cell;
- `clients`: `websockets` clients with short timeouts, and `attempt()` -> what the client saw;
- `django_env`: Django + Channels configured inside a kernel; logged-in clients;
- `loops`: which event loop is this, and crossing between loops safely;
- `redis_server`: a throwaway redis-server on loopback for multi-process lessons;
- `fanout`: the recommended broadcast (bounded queue + writer task per client);
- `demo_apps`: small example servers (echo, a FanOut chat) used by tests and benchmarks;
- `widgets`, `classroom`: chat widgets and the classroom server;
- `quiz`, `evidence`, `challenges`: timed quizzes, their live experiments, and checked coding challenges.
"""
