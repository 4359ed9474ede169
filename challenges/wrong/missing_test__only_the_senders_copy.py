"""Wrong: checks the refusal and the sender's own copy, never that another member receives it."""

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect


def test_chat(app):
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/chat/no-such-room!"):
            pass
        assert refused.value.code == 4003
        with client.websocket_connect("/chat/lobby") as ann:
            for text in ("one", "two"):
                ann.send_text(text)
                assert ann.receive_text() == text


FAILS = (2,)
