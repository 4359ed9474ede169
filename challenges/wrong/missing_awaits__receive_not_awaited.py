"""Known wrong for challenge 3: every await is in place except the send in receive().

It must fail requirements 3 and 4: 'HELLO' never arrives, and the server warns about a coroutine never awaited.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (3, 4)


class Greeter(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send(text_data="welcome")

    async def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data.upper())
