"""Known wrong for challenge 1: echoes valid JSON correctly but lets json.loads() raise on anything else.

It must fail requirement 4: the JSONDecodeError escapes receive() and the client is dropped.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (4,)


class EchoJson(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=json.dumps(json.loads(text_data)))
