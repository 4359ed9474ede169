"""Reference solution: a refusal, and two messages that must reach another member of the room."""

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect


def test_chat(app):
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/chat/no-such-room!"):
            pass
        assert refused.value.code == 4003
        with client.websocket_connect("/chat/lobby") as ann, client.websocket_connect("/chat/lobby") as bob:
            for text in ("one", "two"):
                ann.send_text(text)
                assert ann.receive_text() == text
                assert bob.receive_text() == text
