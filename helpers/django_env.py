"""Django + Channels configured inside the current process, the way a notebook needs it.

`setup()` configures settings once (a second identical call is a no-op; a conflicting one raises an
error that says to restart the kernel), runs migrations on a worker thread (the kernel's thread runs
an event loop, where Django refuses ORM calls with SynchronousOnlyOperation), and picks the channel
layer: in-memory (one process) or Redis (several processes; redis-py's socket timeout is switched off
so idle consumers are not dropped after 5 s).

`login_cookie(username)` creates a user if needed and returns the `sessionid=...` cookie a client
must send to be that user in `scope["user"]`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from helpers.loops import run_in_thread
from helpers.usage import UsageError

__all__ = [
    "SECRET_KEY",
    "DjangoEnv",
    "DjangoEnvError",
    "LayerKind",
    "current",
    "ensure",
    "layer_settings",
    "login_cookie",
    "login_headers",
    "run_off_loop",
    "setup",
]

T = TypeVar("T")

LayerKind = Literal["memory", "redis"]

SECRET_KEY = "websocket-lab-only-not-a-secret"  # never used outside loopback lessons


class DjangoEnvError(RuntimeError):
    """Django was set up in a way this call cannot reconcile; the message says what to do."""


@dataclass(frozen=True)
class DjangoEnv:
    """What `setup()` configured: the channel layer kind, its Redis URL if any, and the database file."""

    channel_layer: LayerKind
    redis_url: str | None
    database: Path


_current: DjangoEnv | None = None


def run_off_loop(fn: Callable[..., T], *args: Any, timeout: float = 60.0) -> T:
    """Call a blocking Django function on a worker thread (`loops.run_in_thread`) and wait for it.

    Safe from a notebook cell (whose thread runs an event loop) and from plain code alike.
    """

    def call() -> T:
        from django.db import connections

        try:
            return fn(*args)
        finally:
            connections.close_all()  # this thread ends now: close its database connections instead of leaking them

    return run_in_thread(call, timeout=timeout, name=f"django-sync-{getattr(fn, '__name__', 'call')}")


def layer_settings(kind: LayerKind, redis_url: str | None = None) -> dict[str, Any]:
    """The CHANNEL_LAYERS setting for `kind` ("memory" or "redis"), as `setup()` uses it; a test can pass it to
    `django.test.override_settings(CHANNEL_LAYERS=...)` (Channels drops its cached layers when it changes)."""
    if kind == "memory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    if kind == "redis":
        if not redis_url:
            raise DjangoEnvError(
                "channel_layer='redis' needs redis_url='redis://127.0.0.1:PORT/0' (see helpers.redis_server)"
            )
        # socket_timeout=None: redis-py 8 defaults to 5 s, which drops every idle consumer (see FACTS).
        hosts = [{"address": redis_url, "socket_timeout": None}]
        return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": hosts}}}
    raise DjangoEnvError(f"channel_layer must be 'memory' or 'redis', not {kind!r}")


def setup(channel_layer: LayerKind = "memory", *, redis_url: str | None = None) -> DjangoEnv:
    """Configure Django + Channels for this process (idempotent) and migrate the auth/session tables."""
    global _current
    import django
    from django.conf import settings

    if redis_url is not None and not (isinstance(redis_url, str) and redis_url.startswith(("redis://", "rediss://"))):
        raise UsageError(f"redis_url must look like 'redis://127.0.0.1:6379', got {redis_url!r}")
    layers = layer_settings(channel_layer, redis_url)
    if _current is not None:
        if (_current.channel_layer, _current.redis_url) != (channel_layer, redis_url):
            raise DjangoEnvError(
                f"Django is already set up with channel_layer={_current.channel_layer!r}"
                f"{f' at {_current.redis_url}' if _current.redis_url else ''}; settings cannot change in a "
                "running process. Restart the kernel (Kernel > Restart) and call setup() once with what you need."
            )
        return _current
    if settings.configured:
        raise DjangoEnvError(
            "Django settings were configured by other code in this process; helpers.django_env.setup() must be "
            "the only place that configures them. Restart the kernel and call setup() first."
        )
    folder = Path(tempfile.mkdtemp(prefix="wslab-django-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    database = folder / "db.sqlite3"
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "channels",
        ],
        # A file, not ":memory:": every thread (and process) must see the same tables.
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
        CHANNEL_LAYERS=layers,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast; lesson users only
    )
    django.setup()
    run_off_loop(_migrate)
    _current = DjangoEnv(channel_layer, redis_url, database)
    return _current


def _migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def current() -> DjangoEnv:
    """The environment `setup()` made; raises if it has not run yet."""
    if _current is None:
        raise DjangoEnvError("call helpers.django_env.setup() before using Django in this process")
    return _current


def ensure() -> DjangoEnv:
    """The current environment, or a default one (`setup()`) if none exists yet; an earlier set-up is kept."""
    return _current if _current is not None else setup()


def _login_cookie(username: str, password: str | None) -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    if created or password:
        user.set_password(password or f"{username}-password")
        user.save()
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def login_cookie(username: str, password: str | None = None) -> str:
    """Create `username` if needed, log it in, and return the `sessionid=...` cookie string."""
    current()
    return f"sessionid={run_off_loop(_login_cookie, username, password)}"


def login_headers(username: str) -> dict[str, str]:
    """Headers for a `websockets` client (additional_headers=) that should arrive as `username`."""
    return {"Cookie": login_cookie(username)}
