"""Known wrong for challenge 3: accepts and answers correctly, but the greeting in connect() is never awaited.

It must fail requirements 2-4: 'HELLO' arrives first instead of 'welcome', and the server warns.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (2, 3, 4)


class Greeter(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        self.send(text_data="welcome")

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data.upper())
