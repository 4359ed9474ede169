"""Known wrong for challenge 4: a working group chat that never takes a client out of the group.

It must fail requirement 5: the mailboxes of clients that left stay in the group.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (5,)


class RoomChat(AsyncWebsocketConsumer):
    group = "lobby"

    async def connect(self):
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event):
        await self.send(text_data=event["text"])
