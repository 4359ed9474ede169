"""Known wrong for challenge 2: closes anonymous clients before accepting.

It must fail requirement 2: a close before accept is answered with a bare HTTP 403, so no code or reason arrives.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (2,)


class MembersOnly(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        await self.send(text_data=f"welcome, {user.username}")
