"""Wrong: connects and sends, but asserts nothing, so every broken chat passes it too."""

from starlette.testclient import TestClient


def test_chat(app):
    with TestClient(app) as client, client.websocket_connect("/chat/lobby") as ann:
        ann.send_text("one")


FAILS = (2, 3, 4)
