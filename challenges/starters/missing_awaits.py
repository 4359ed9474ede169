from channels.generic.websocket import AsyncWebsocketConsumer


class Greeter(AsyncWebsocketConsumer):
    async def connect(self):
        self.accept()
        self.send(text_data="welcome")

    async def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data.upper())
