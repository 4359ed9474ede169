from starlette.testclient import TestClient


def test_chat(app):
    with TestClient(app) as client, client.websocket_connect("/chat/lobby") as ann:
        ann.send_text("one")
        assert ann.receive_text() == "one"
