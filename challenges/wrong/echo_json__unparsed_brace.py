"""Known wrong for challenge 1: anything that looks like JSON is echoed back without being parsed.

It must fail requirement 4: '{"n": 4' starts with a brace but is not JSON, and comes back unchanged.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (4,)


class EchoJson(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        if text_data and text_data.startswith("{"):
            await self.send(text_data=text_data)  # never parsed: broken JSON goes straight back
        else:
            await self.send(text_data=json.dumps({"error": "send a JSON object"}))
