import jwt
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from helpers.challenges.production import AUTH_AUDIENCE, AUTH_SECRET


async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    message = await websocket.receive_json()  # the first message: {"type": "auth", "token": ...}
    claims = jwt.decode(message["token"], AUTH_SECRET, algorithms=["HS256"], audience=AUTH_AUDIENCE)
    user = claims["sub"]
    await websocket.send_text(f"welcome {user}")
    async for text in websocket.iter_text():
        await websocket.send_text(f"{user}: {text}")


auth_app = Starlette(routes=[WebSocketRoute("/room", room)])
