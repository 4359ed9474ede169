"""Known wrong for challenge 2: sends its greeting to everyone first, then closes on anonymous clients.

It must fail requirement 3: the refused client receives a message before the close.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (3,)


class MembersOnly(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        await self.accept()
        await self.send(text_data=f"welcome, {user.username or 'stranger'}")
        if not user.is_authenticated:
            await self.close(code=4401, reason="log in first")
