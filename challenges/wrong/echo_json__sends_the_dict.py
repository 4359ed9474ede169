"""Known wrong for challenge 1: parses the JSON, then hands the dict itself to send().

It must fail requirements 2-4: text_data must be a str, so uvicorn's send fails and the client is dropped.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer

FAILS = (2, 3, 4)


class EchoJson(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            data = json.loads(text_data)
        except json.JSONDecodeError:
            await self.send(text_data=json.dumps({"error": "send a JSON object"}))
            return
        await self.send(text_data=data)
