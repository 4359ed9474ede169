"""Peers that go silent without closing, for the lesson on dead peers, keepalive and reconnection.

- `relay`: a loopback TCP relay between clients and a server, on a thread and loop of its own, that can freeze
  either direction (stop reading, close nothing), thaw, cut every connection with RST, or close them with FIN;
- `child_client`: a `websockets` client in a child process that can be paused (SIGSTOP), resumed and killed.
"""

__all__: list[str] = []
