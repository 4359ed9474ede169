"""The instructor's handle on a running live quiz: its URLs, its results, and stopping it.

    live = start_live_quiz(quizzes=["broadcasting"])    # loopback only; the classroom chat is on /chat too
    live.student_url        # ws://127.0.0.1:PORT/quiz/student?code=...&name={name}  (for students)
    live.instructor_url     # ws://127.0.0.1:PORT/quiz/instructor?key=...            (for the instructor only)
    live.rows(); live.write_csv("results.csv"); live.leaderboard()
    live.stop()

The instructor key is made fresh for each session (`secrets.token_urlsafe`) and is in `instructor_url` only:
the handle's repr, and everything students receive, leave it out. It travels in the query string, which is
fine on loopback in your own kernel; lesson 17 shows where query strings end up (access logs, proxies) once the
server is reachable from other machines, so keep `instructor_url` to yourself there.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from helpers.classroom import Classroom, Limits, Room, announced_address, exposure_notice, is_loopback, new_code
from helpers.live_quiz.app import INSTRUCTOR_PATH, STUDENT_PATH, QuizRoom, live_quiz_app
from helpers.live_quiz.export import Row, csv_text, result_rows, write_csv
from helpers.live_quiz.session import QuestionBank, Standing
from helpers.live_quiz.show_me import ShowMe
from helpers.servers import DEFAULT_HOST, ThreadServer, serve
from helpers.usage import UsageTypeError, check_names, check_text

__all__ = ["LiveQuiz", "exposure_notice_for_quiz", "start_live_quiz"]


class LiveQuiz:
    """A running live quiz: the server, its quiz room, the classroom chat beside it if any (all thread-safe)."""

    def __init__(self, server: ThreadServer, room: QuizRoom, chat: Room | None, host: str) -> None:
        self.server = server
        self.room = room
        self.chat = chat
        self.host = host

    @property
    def code(self) -> str:
        return self.room.code

    @property
    def key(self) -> str:
        """The instructor's secret key (in `instructor_url`); never sent to students."""
        return self.room.key

    @property
    def student_url(self) -> str:
        """The URL for students on this computer, with `{name}` for a client to fill in."""
        return self.server.ws_url(f"{STUDENT_PATH}?code={quote(self.code, safe='')}&name={{name}}")

    def url_for(self, name: str, code: str | None = None) -> str:
        """A concrete student URL for `name` (another `code` to try a wrong one)."""
        code = self.code if code is None else code
        return self.server.ws_url(f"{STUDENT_PATH}?code={quote(code, safe='')}&name={quote(name, safe='')}")

    @property
    def instructor_url(self) -> str:
        return self.instructor_url_with(self.key)

    def instructor_url_with(self, key: str) -> str:
        """The instructor URL with another `key` (an empty one leaves it out), to show what a wrong key gets."""
        query = f"?key={quote(key, safe='')}" if key else ""
        return self.server.ws_url(f"{INSTRUCTOR_PATH}{query}")

    @property
    def classroom(self) -> Classroom | None:
        """The classroom chat on the same server and join code (None if started with chat=False).

        One server serves both, so its `stop()` stops the quiz too: stop with `live.stop()`.
        """
        return None if self.chat is None else Classroom(self.server, self.chat, self.host, None)

    def rows(self) -> list[Row]:
        """Who answered what and when, one dict per answer (`pandas.DataFrame(live.rows())` takes them)."""
        return self.server.run(self.room.call(lambda: result_rows(self.room.session)))

    def csv(self) -> str:
        """The rows as CSV text."""
        return csv_text(self.rows())

    def write_csv(self, path: str | Path) -> Path:
        """Write the rows to a CSV file; returns its path."""
        return write_csv(self.rows(), path)

    def leaderboard(self) -> list[Standing]:
        """Everyone who joined, best first; points count once a question is revealed."""
        return self.server.run(self.room.call(self.room.session.leaderboard))

    def stop(self) -> None:
        """Tell everyone the quiz is over (close 1001), then stop the server. Safe to call twice."""
        if self.server.running:
            with contextlib.suppress(Exception):
                self.server.run(self.room.close_all())
            if self.chat is not None:
                with contextlib.suppress(Exception):
                    self.server.run(self.chat.close_all())
        self.server.stop()

    def __repr__(self) -> str:
        state = "running" if self.server.running else "stopped"
        where = "loopback only" if is_loopback(self.host) else f"listening on {self.host}"
        return f"<LiveQuiz {self.server.name!r} {state}, {where}, {len(self.room.session.rounds)} rounds>"


def exposure_notice_for_quiz(
    host: str, port: int | str, code: str, address: str | None = None, *, dry_run: bool
) -> str:
    """The classroom's notice for a live quiz that listens beyond loopback: the chat's URL, the students' quiz
    cell with its URL, and the warning. `address` is the one students are told (found from the routing table
    otherwise); `dry_run=True` words it for a server that is not started."""
    url = f"ws://{announced_address(host, address)}:{port}{STUDENT_PATH}?code={quote(code, safe='')}&name={{name}}"
    quiz_lines = [
        "",
        "The live quiz: students run in their own notebook",
        "    from helpers.live_quiz.widgets import StudentQuiz",
        f'    StudentQuiz("{url}", "<your name>")',
    ]
    return exposure_notice(host, port, code, address, dry_run=dry_run, also=quiz_lines, stop_call="live.stop()")


def start_live_quiz(
    code: str | None = None,
    *,
    quizzes: Sequence[str] | None = None,
    name: str = "live-quiz",
    host: str = DEFAULT_HOST,
    port: int = 0,
    limits: Limits | None = None,
    chat: bool = True,
    show_me: bool = True,
    address: str | None = None,
) -> LiveQuiz:
    """Serve a live quiz for a class (a random join code unless `code` is given) and return the instructor's handle.

    `quizzes` are quiz names from quizzes/ (all of them by default). With `chat=True` the classroom chat runs on
    the same server at /chat, with the same join code and limits. `host` stays 127.0.0.1 unless you pass
    another; then the classroom's notice about who can connect is printed, with the students' quiz URL (at
    `address` if given, else this computer's LAN address).
    With `show_me=True` each reveal runs the question's "Show me" experiment once, for the whole room.
    """
    if code is not None:
        check_text(code, "code", example="maple-42")
    if limits is not None and not isinstance(limits, Limits):
        raise UsageTypeError(f"limits must be a helpers.classroom.Limits, not {type(limits).__name__}")
    bank = QuestionBank(None if quizzes is None else check_names(quizzes, "quizzes"))
    limits = limits or Limits()
    room = QuizRoom(code or new_code(), secrets.token_urlsafe(16), bank, limits, ShowMe() if show_me else ShowMe(None))
    chat_room = Room(room.code, limits) if chat else None
    app = live_quiz_app(room, chat_room)
    # uvicorn refuses frames far over the limit itself (1009, no reason); the room explains the rest.
    server = serve(app, name=name, host=host, port=port, ws_max_size=max(65536, 4 * limits.max_message_bytes))
    live = LiveQuiz(server, room, chat_room, host)
    if not is_loopback(host):
        print(exposure_notice_for_quiz(host, server.port, room.code, address, dry_run=False))
    return live
