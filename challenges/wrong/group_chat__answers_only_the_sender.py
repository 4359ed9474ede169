"""Known wrong for challenge 4: joins and leaves the group, but answers the sender's own socket only.

It must fail requirement 2: bob never hears ada.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (2,)


class RoomChat(AsyncWebsocketConsumer):
    group = "lobby"

    async def connect(self):
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data)
