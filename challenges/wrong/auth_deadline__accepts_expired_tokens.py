"""Wrong: the signature is checked but not the expiry, so an expired token still gets in."""

import asyncio
import json

import jwt
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from helpers.challenges.production import AUTH_AUDIENCE, AUTH_SECRET


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


async def authenticate(websocket: WebSocket) -> str:
    try:
        async with asyncio.timeout(2):
            first = await websocket.receive_text()
    except TimeoutError:
        raise Refused(4408, "no auth message within 2 s") from None
    try:
        message = json.loads(first)
    except json.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise Refused(4401, "authenticate first")
    try:
        claims = jwt.decode(
            message.get("token"),
            AUTH_SECRET,
            algorithms=["HS256"],
            audience=AUTH_AUDIENCE,
            options={"verify_exp": False},
        )
    except jwt.ExpiredSignatureError:
        raise Refused(4419, "token expired: get a fresh one") from None
    except jwt.InvalidTokenError as exc:
        raise Refused(4401, f"invalid token: {exc}") from None
    return claims["sub"]


async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        user = await authenticate(websocket)
    except Refused as refused:
        await websocket.close(refused.code, refused.reason)
        return
    await websocket.send_text(f"welcome {user}")
    try:
        async for text in websocket.iter_text():
            await websocket.send_text(f"{user}: {text}")
    except WebSocketDisconnect:
        pass


auth_app = Starlette(routes=[WebSocketRoute("/room", room)])

FAILS = (4,)
