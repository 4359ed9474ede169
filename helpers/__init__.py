"""Helpers for the live WebSocket lab: real servers, real clients, Django Channels set-up.

Modules, one concept each: `servers` (uvicorn in a thread, on a loop, in a process), `clients`
(websockets clients and what they saw), `django_env` (Django + Channels inside a kernel),
`server_logs` (server log records kept per server instead of printed).
"""
