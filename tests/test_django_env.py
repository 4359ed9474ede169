"""Tests for helpers.django_env: idempotent set-up, clear conflicts, and logged-in clients."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from helpers import django_env
from helpers.clients import attempt_sync
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError
from tests.support import ROOT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def whoami() -> Iterator[ThreadServer]:
    """A real Channels consumer behind AuthMiddlewareStack that reports scope['user']."""
    django_env.setup()
    from channels.auth import AuthMiddlewareStack
    from channels.generic.websocket import AsyncWebsocketConsumer

    class WhoAmI(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            user = self.scope["user"]
            await self.send(f"authenticated={user.is_authenticated} username={user.username!r}")

    with serve(AuthMiddlewareStack(WhoAmI.as_asgi())) as server:
        yield server


def test_setup_is_idempotent() -> None:
    """Calling setup() again with the same choice returns the same environment."""
    first = django_env.setup()
    assert django_env.setup() is first
    assert first.channel_layer == "memory" and first.database.exists()


def test_conflicting_setup_says_to_restart_the_kernel() -> None:
    """Asking for a different channel layer after set-up raises an error that explains the restart."""
    django_env.setup()
    with pytest.raises(
        django_env.DjangoEnvError, match=r"already set up with channel_layer='memory'.*Restart the kernel"
    ):
        django_env.setup("redis", redis_url="redis://127.0.0.1:6379/0")


def test_redis_layer_needs_a_url() -> None:
    """channel_layer='redis' without a URL is refused before anything is configured."""
    with pytest.raises(django_env.DjangoEnvError, match="needs redis_url="):
        django_env.layer_settings("redis", None)


def test_a_redis_url_that_is_not_one_is_refused() -> None:
    """setup(redis_url=...) with an http:// address says what a Redis URL looks like, before touching Django."""
    with pytest.raises(UsageError, match=r"redis_url must look like 'redis://127.0.0.1:6379'"):
        django_env.setup("redis", redis_url="http://127.0.0.1:6379")


def test_redis_layer_turns_off_the_socket_timeout() -> None:
    """The Redis layer config sets socket_timeout=None so idle consumers are not dropped after 5 s."""
    layers = django_env.layer_settings("redis", "redis://127.0.0.1:1/0")
    assert layers["default"]["CONFIG"]["hosts"] == [{"address": "redis://127.0.0.1:1/0", "socket_timeout": None}]


def test_anonymous_client_is_anonymous(whoami: ThreadServer) -> None:
    """A client without a session cookie reaches the consumer as AnonymousUser."""
    outcome = attempt_sync(whoami.ws_url("/"), receive=1)
    assert outcome.messages == ["authenticated=False username=''"]


def test_login_cookie_makes_the_client_that_user(whoami: ThreadServer) -> None:
    """A client that sends the sessionid cookie from login_cookie() arrives as that user."""
    headers = django_env.login_headers("ada")
    assert headers["Cookie"].startswith("sessionid=")
    outcome = attempt_sync(whoami.ws_url("/"), receive=1, headers=headers)
    assert outcome.messages == ["authenticated=True username='ada'"]


def test_foreign_settings_are_refused() -> None:
    """If other code configured Django first, setup() refuses with an explanation (fresh interpreter)."""
    script = (
        "from django.conf import settings\nsettings.configure()\n"
        "from helpers import django_env\n"
        "try:\n    django_env.setup()\nexcept django_env.DjangoEnvError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert "configured by other code" in result.stdout, result.stderr


def test_using_django_before_setup_in_a_fresh_interpreter_is_explained() -> None:
    """login_cookie() before setup() raises an error that names setup()."""
    script = (
        "from helpers import django_env\n"
        "try:\n    django_env.login_cookie('x')\nexcept django_env.DjangoEnvError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.stdout.strip() == "call helpers.django_env.setup() before using Django in this process"
