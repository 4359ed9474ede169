"""What lesson 13's matrix showed on this stack when the lesson was written, cell by cell.

uvicorn 0.54.0 (websockets-sansio, websockets legacy, wsproto 1.3.2), hypercorn 0.18.0, daphne 4.2.3 and
websockets 17.4, each with its library's defaults. The notebook asserts its measured matrix equals this, so a
library upgrade that changes a behaviour fails there and names the cell: then re-run the lesson, read what
changed, fix the prose that depended on it, and update this table.
"""

from __future__ import annotations

__all__ = ["EXPECTED"]

EXPECTED: dict[str, dict[str, str]] = {
    "close before accept": {
        "uvicorn": "HTTP 403",
        "uvicorn-websockets": "HTTP 403",
        "uvicorn-wsproto": "HTTP 403",
        "hypercorn": "HTTP 403",
        "daphne": "HTTP 403",
        "websockets": "HTTP 403 'not allowed'",
    },
    "raises after accept": {
        "uvicorn": "dropped (1006)",
        "uvicorn-websockets": "dropped (1006)",
        "uvicorn-wsproto": "dropped (1006)",
        "hypercorn": "closed 1011",
        "daphne": "closed 1011",
        "websockets": "closed 1011",
    },
    "closes with 4003 + reason": {
        "uvicorn": "closed 4003 'room is full'",
        "uvicorn-websockets": "closed 4003 'room is full'",
        "uvicorn-wsproto": "closed 4003 'room is full'",
        "hypercorn": "closed 4003 'room is full'",
        "daphne": "closed 4003",
        "websockets": "closed 4003 'room is full'",
    },
    "message over the default limit": {
        "uvicorn": "16 MiB passes; +1 B: closed 1009",
        "uvicorn-websockets": "16 MiB passes; +1 B: closed 1009",
        "uvicorn-wsproto": "16 MiB passes; +1 B: closed 1009",
        "hypercorn": "16 MiB passes; +1 B: closed 1009",
        "daphne": "1 MiB passes; +1 B: dropped (1006)",
        "websockets": "1 MiB passes; +1 B: closed 1009",
    },
    "invalid UTF-8 text": {
        "uvicorn": "closed 1007",
        "uvicorn-websockets": "closed 1007",
        "uvicorn-wsproto": "dropped (1006)",
        "hypercorn": "dropped (1006)",
        "daphne": "dropped (1006)",
        "websockets": "closed 1007",
    },
    "app's disconnect code after a TCP abort": {
        "uvicorn": "1005",
        "uvicorn-websockets": "1006",
        "uvicorn-wsproto": "1005",
        "hypercorn": "1006",
        "daphne": "1006",
        "websockets": "1006",
    },
    "subprotocol (app picks the 2nd offered)": {
        "uvicorn": "chat.v2",
        "uvicorn-websockets": "chat.v2",
        "uvicorn-wsproto": "chat.v2",
        "hypercorn": "chat.v2",
        "daphne": "chat.v2",
        "websockets": "chat.v2",
    },
    "permessage-deflate": {
        "uvicorn": "on",
        "uvicorn-websockets": "on",
        "uvicorn-wsproto": "on",
        "hypercorn": "on",
        "daphne": "off",
        "websockets": "on",
    },
    "scope['client'] with X-Forwarded-For": {
        "uvicorn": "203.0.113.7",
        "uvicorn-websockets": "203.0.113.7",
        "uvicorn-wsproto": "203.0.113.7",
        "hypercorn": "127.0.0.1",
        "daphne": "127.0.0.1",
        "websockets": "127.0.0.1",
    },
    "scope['asgi']['spec_version']": {
        "uvicorn": "2.4",
        "uvicorn-websockets": "2.4",
        "uvicorn-wsproto": "2.4",
        "hypercorn": "2.3",
        "daphne": "none",
        "websockets": "not ASGI",
    },
    "flood, app never reads: server memory": {
        "uvicorn": "bounded (< 8 MiB)",
        "uvicorn-websockets": "bounded (< 8 MiB)",
        "uvicorn-wsproto": "bounded (< 8 MiB)",
        "hypercorn": "bounded (< 8 MiB)",
        "daphne": "grew with the flood",
        "websockets": "bounded (< 8 MiB)",
    },
    "keepalive pings (defaults)": {
        "uvicorn": "every 20 s, timeout 20 s",
        "uvicorn-websockets": "every 20 s, timeout 20 s",
        "uvicorn-wsproto": "every 20 s, timeout 20 s",
        "hypercorn": "no pings",
        "daphne": "every 20 s, timeout 30 s",
        "websockets": "every 20 s, timeout 20 s",
    },
    "returns without accepting": {
        "uvicorn": "HTTP 500 'Internal Server Error'",
        "uvicorn-websockets": "HTTP 500 'Internal Server Error'",
        "uvicorn-wsproto": "HTTP 500 'Internal Server Error'",
        "hypercorn": "HTTP 500",
        "daphne": "server ended it after 3-7 s: dropped, no HTTP response",
        "websockets": "open, then closed 1000",
    },
    "never accepts": {
        "uvicorn": "client gave up at 6 s",
        "uvicorn-websockets": "client gave up at 6 s",
        "uvicorn-wsproto": "client gave up at 6 s",
        "hypercorn": "client gave up at 6 s",
        "daphne": "server ended it after 3-7 s: dropped, no HTTP response",
        "websockets": "client gave up at 6 s",
    },
    "graceful shutdown: what the client sees, and when": {
        "uvicorn": "closed 1012 at once",
        "uvicorn-websockets": "closed 1012 at once",
        "uvicorn-wsproto": "closed 1012 at once",
        "hypercorn": "closed 1011 after 3-7 s",
        "daphne": "dropped (1006) at once",
        "websockets": "closed 1001 at once",
    },
}
