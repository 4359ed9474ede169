"""Known wrong for challenge 2: refuses anonymous users properly, but greets every member as ada.

It must fail requirement 4: a second member (grace) is greeted with someone else's name.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (4,)


class MembersOnly(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401, reason="log in first")
            return
        await self.send(text_data="welcome, ada")
