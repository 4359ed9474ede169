"""Reference solution for challenge 2 (reject anonymous users with a readable reason)."""

from channels.generic.websocket import AsyncWebsocketConsumer


class MembersOnly(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.accept()  # open first: only an open WebSocket can carry a close code and reason
            await self.close(code=4401, reason="log in first")
            return
        await self.accept()
        await self.send(text_data=f"welcome, {user.username}")
