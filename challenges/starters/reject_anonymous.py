from channels.generic.websocket import AsyncWebsocketConsumer


class MembersOnly(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close()  # the client should be able to read why it was turned away
            return
        await self.accept()
        await self.send(text_data=f"welcome, {user.username}")
