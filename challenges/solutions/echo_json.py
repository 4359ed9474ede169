"""Reference solution for challenge 1 (accept and echo JSON)."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoJson(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            data = json.loads(text_data)
        except (TypeError, json.JSONDecodeError):  # TypeError: a binary frame has no text_data
            await self.send(text_data=json.dumps({"error": "send a JSON text message"}))
            return
        await self.send(text_data=json.dumps(data))  # text_data must be a str
