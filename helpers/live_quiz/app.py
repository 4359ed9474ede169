"""The live quiz's WebSocket endpoints: students at `/quiz/student`, the instructor at `/quiz/instructor`.

    room = QuizRoom(code, key, QuestionBank(["broadcasting"]))
    app = live_quiz_app(room)                        # its own Starlette app, with the classroom chat at /chat
    routes = quiz_routes(room)                       # or the two routes, to mount next to your own

Students connect with `?code=<join code>&name=<their name>`, checked as the classroom checks them (same close
codes, same name rule: text only). The instructor connects with `?key=<the session's secret key>`, compared
with `hmac.compare_digest`; up to MAX_INSTRUCTORS instructor connections at once (a second screen, or a
reconnection while the old connection is still being noticed), and any of them may push and reveal.

Everything runs on the server's loop. Messages go out through `helpers.fanout.FanOut` (one hub for students,
one for instructors): a student on a slow connection is evicted with 1013 instead of holding up the room.
Each connection has the classroom's token bucket and message size limit, counted over every message, valid
or not, so a student who floods is closed with 4429.

When the instructor disconnects, nothing stops: the round runs to its deadline and (with auto-reveal, the
default) is revealed to the students then; the students are told the instructor went away and came back.
An instructor who reconnects with the key gets the whole state again: the catalogue, the current round, the
answers so far and, if it was revealed meanwhile, the reveal. A student who reconnects with the same name gets
their score, the current round with the time left, and their own answer to it.

At the reveal the room runs the question's "Show me" experiment once, for everyone (`helpers.live_quiz.show_me`),
unless its `ShowMe` has no runner (the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected
from websockets.frames import CloseCode

from helpers.classroom import (
    CODE_MISSING,
    CODE_WRONG,
    NAME_TAKEN,
    PATH,
    ROOM_FULL,
    TOO_MANY,
    Limits,
    Room,
    TokenBucket,
    fit_reason,
    name_refusal,
    one_line,
)
from helpers.fanout import FanOut
from helpers.live_quiz import protocol as wire
from helpers.live_quiz.session import (
    AnswerRefused,
    LiveQuizError,
    LiveSession,
    QuestionBank,
    Round,
    Standing,
    name_key,
)
from helpers.live_quiz.show_me import ShowMe

__all__ = [
    "INSTRUCTOR_PATH",
    "MAX_INSTRUCTORS",
    "STUDENT_PATH",
    "QuizRoom",
    "catalogue",
    "close_quietly",
    "instructor_refusal",
    "live_quiz_app",
    "quiz_routes",
    "receive_texts",
    "student_refusal",
]

T = TypeVar("T")

STUDENT_PATH = "/quiz/student"
INSTRUCTOR_PATH = "/quiz/instructor"
MAX_INSTRUCTORS = 3
_SLOW = "too slow: your connection fell behind"


async def close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with `code` and `reason` (cut to fit a close frame); a connection already gone is no error."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, fit_reason(reason)), 1.0)


async def receive_texts(websocket: WebSocket, bucket: TokenBucket, limits: Limits) -> AsyncIterator[str]:
    """Each text message within the classroom's limits, until the client leaves or breaks one (then closed)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            await close_quietly(websocket, CloseCode.UNSUPPORTED_DATA, "text messages only")
            return
        if len(text.encode()) > limits.max_message_bytes:
            await close_quietly(
                websocket, CloseCode.MESSAGE_TOO_BIG, f"message too big: the limit is {limits.max_message_bytes} bytes"
            )
            return
        if not bucket.take():
            reason = f"too many messages: the limit is {limits.rate:g} per second, {limits.burst} at once"
            await close_quietly(websocket, TOO_MANY, reason)
            return
        yield text


def catalogue(bank: QuestionBank) -> list[dict[str, Any]]:
    """The quizzes and questions the instructor can push (ids, titles, each prompt's first 80 characters)."""
    return [
        {
            "id": quiz.id,
            "title": quiz.title,
            "questions": [{"id": q.id, "prompt": one_line(q.prompt)[:80]} for q in quiz.questions],
        }
        for quiz in bank.quizzes.values()
    ]


class QuizRoom:
    """One live quiz on one server: who is connected, the session's state, and what each message does."""

    def __init__(
        self, code: str, key: str, bank: QuestionBank, limits: Limits | None = None, show_me: ShowMe | None = None
    ) -> None:
        if not code or not key:
            raise LiveQuizError("a live quiz needs a join code and an instructor key, both non-empty")
        self.code, self.key = code, key
        self.limits = limits or Limits()
        self.session = LiveSession(bank)
        self.students = FanOut(max_queue=self.limits.max_queue, close_reason=_SLOW)
        self.instructors = FanOut(max_queue=self.limits.max_queue, close_reason=_SLOW)
        self.connected: dict[str, WebSocket] = {}  # name key -> the student's connection
        self._timer: asyncio.TimerHandle | None = None
        self.show_me = show_me or ShowMe(None)  # ShowMe(None): reveals run no experiment

    async def call(self, function: Callable[[], T]) -> T:
        """`function()` on the server's loop (for the instructor's handle: `server.run(room.call(...))`)."""
        return function()

    # -- the endpoints

    async def student(self, websocket: WebSocket) -> None:
        """A student's connection: admitted or refused, then their answers until they leave."""
        await websocket.accept()  # first, so that a refusal can say why in the close frame
        refusal = student_refusal(self, websocket)
        if refusal is not None:
            await close_quietly(websocket, *refusal)
            return
        name = self.session.join(one_line(websocket.query_params["name"])).name
        self.connected[name_key(name)] = websocket
        await self.students.register(websocket, name)
        self._greet_student(websocket, name)
        self._progress()
        bucket = TokenBucket(self.limits.rate, self.limits.burst)
        try:
            async for text in receive_texts(websocket, bucket, self.limits):
                self._on_answer(websocket, name, text)
        except (WebSocketDisconnect, WebSocketDisconnected):  # closed under us (evicted, stopped): just leave
            pass
        finally:
            if self.connected.get(name_key(name)) is websocket:
                del self.connected[name_key(name)]
                self.session.leave(name)
            await self.students.unregister(websocket)
            self._progress()

    async def instructor(self, websocket: WebSocket) -> None:
        """An instructor's connection: the key checked, then their commands until they leave."""
        await websocket.accept()
        refusal = instructor_refusal(self, websocket)
        if refusal is not None:
            await close_quietly(websocket, *refusal)
            return
        await self.instructors.register(websocket, "instructor")
        self._greet_instructor(websocket)
        if len(self.instructors) == 1:
            self.students.publish(wire.encode(wire.instructor_message(True)))
        bucket = TokenBucket(self.limits.rate, self.limits.burst)
        try:
            async for text in receive_texts(websocket, bucket, self.limits):
                self._on_command(websocket, text)
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass
        finally:
            await self.instructors.unregister(websocket)
            if not len(self.instructors):
                self.students.publish(wire.encode(wire.instructor_message(False)))

    # -- what messages do

    def _on_answer(self, websocket: WebSocket, name: str, text: str) -> None:
        try:
            message = wire.parse(text, "student")
        except wire.ProtocolError as exc:
            self._tell(self.students, websocket, wire.error_message(exc.reason))
            return
        assert isinstance(message, wire.AnswerMessage)
        try:
            answer = self.session.answer(name, message.question, message.letters)
        except AnswerRefused as exc:
            self._tell(self.students, websocket, wire.refused_message(exc.reason, message.question))
            return
        self._tell(self.students, websocket, wire.answered_message(answer, message.question))
        self._progress()

    def _on_command(self, websocket: WebSocket, text: str) -> None:
        try:
            message = wire.parse(text, "instructor")
            if isinstance(message, wire.PushMessage):
                played = self.session.push(
                    message.quiz, message.question, message.seconds, auto_reveal=message.auto_reveal
                )
                self._start(played)
            elif isinstance(message, wire.RevealMessage):
                self._reveal(self.session.reveal(message.question))
        except wire.ProtocolError as exc:
            self._tell(self.instructors, websocket, wire.error_message(exc.reason))
        except LiveQuizError as exc:
            self._tell(self.instructors, websocket, wire.error_message(str(exc)))

    def _start(self, played: Round) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(played.deadline - self.session.clock(), self._deadline, played.number)
        self._to_everyone(wire.question_message(played, self.session.clock()))
        self._progress()

    def _deadline(self, number: int) -> None:
        self._timer = None
        played = self.session.close_round(number)
        if played is None:
            return
        if played.auto_reveal:
            self._reveal(self.session.reveal(by="time"))
            return
        self._to_everyone(wire.time_up_message(played))

    def _reveal(self, played: Round) -> None:
        """Send the reveal: everyone's common part, and to each student their own result."""
        self._cancel_timer()
        board = self.session.leaderboard()
        public = wire.revealed_message(played, board)
        standings = {name_key(standing.name): standing for standing in board}
        for key, websocket in list(self.connected.items()):
            self._tell(self.students, websocket, {**public, "you": self._you(played, key, standings)})
        self.instructors.publish(wire.encode(public))
        self.show_me.start(played, self._to_everyone)

    def _to_everyone(self, message: dict[str, Any]) -> None:
        text = wire.encode(message)
        self.students.publish(text)
        self.instructors.publish(text)

    @staticmethod
    def _you(played: Round, key: str, standings: dict[str, Standing]) -> dict[str, Any]:
        standing = standings.get(key)
        score, rank = (0, None) if standing is None else (standing.score, standing.rank)
        return wire.you_part(played.answers.get(key), score, rank)

    def _greet_student(self, websocket: WebSocket, name: str) -> None:
        key, session = name_key(name), self.session
        board = {name_key(s.name): s for s in session.leaderboard()}
        rank = board[key].rank if key in board else None
        welcome = wire.student_welcome(name, session.score(name), rank, bool(len(self.instructors)))
        self._tell(self.students, websocket, welcome)
        played = session.current
        if played is not None:
            self._tell(
                self.students, websocket, wire.question_message(played, session.clock(), played.answers.get(key))
            )
            if played.revealed:
                public = wire.revealed_message(played, session.leaderboard())
                self._tell(self.students, websocket, {**public, "you": self._you(played, key, board)})
                shown = self.show_me.message_for(played)
                if shown is not None:
                    self._tell(self.students, websocket, shown)

    def _greet_instructor(self, websocket: WebSocket) -> None:
        session = self.session
        asked = [played.question.id for played in session.rounds]
        self._tell(self.instructors, websocket, wire.instructor_welcome(catalogue(session.bank), asked, session.room()))
        played = session.current
        if played is not None:
            self._tell(self.instructors, websocket, wire.question_message(played, session.clock()))
            self._tell(self.instructors, websocket, wire.progress_message(played, session.room()))
            if played.revealed:
                self._tell(self.instructors, websocket, wire.revealed_message(played, session.leaderboard()))
                shown = self.show_me.message_for(played)
                if shown is not None:
                    self._tell(self.instructors, websocket, shown)

    def _progress(self) -> None:
        self.instructors.publish(wire.encode(wire.progress_message(self.session.current, self.session.room())))

    @staticmethod
    def _tell(hub: FanOut, websocket: WebSocket, message: dict[str, Any]) -> None:
        if websocket in hub.members:  # not if the hub has evicted it (it is on its way out)
            hub.send_to(websocket, wire.encode(message))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "the quiz is over") -> None:
        """Close everyone with `code` and `reason` (so clients see why), after a running experiment (bounded)."""
        self._cancel_timer()
        with contextlib.suppress(TimeoutError):
            await self.show_me.finish()
        everyone = list(self.connected.values()) + list(self.instructors.members)
        self.connected.clear()
        await self.students.aclose()
        await self.instructors.aclose()
        for websocket in everyone:
            await close_quietly(websocket, code, reason)


def student_refusal(room: QuizRoom, websocket: WebSocket) -> tuple[int, str] | None:
    """(close code, reason) for a student the room does not admit (the classroom's codes), else None."""
    code = websocket.query_params.get("code", "")
    name = one_line(websocket.query_params.get("name", ""))
    if not code:
        return CODE_MISSING, "join code required: add ?code=... (ask your instructor) to the URL"
    if not hmac.compare_digest(code.encode(), room.code.encode()):
        return CODE_WRONG, "wrong join code: check it with your instructor"
    refusal = name_refusal(name)
    if refusal is not None:
        return refusal
    if name_key(name) in room.connected:
        return NAME_TAKEN, f"the name {name!r} is connected already: close that connection first, or pick another"
    if len(room.connected) >= room.limits.max_participants:
        return ROOM_FULL, f"the room is full ({room.limits.max_participants} people)"
    return None


def instructor_refusal(room: QuizRoom, websocket: WebSocket) -> tuple[int, str] | None:
    """(close code, reason) for an instructor connection without the right key, or one too many, else None."""
    key = websocket.query_params.get("key", "")
    if not key:
        return CODE_MISSING, "instructor key required: add ?key=... (the live quiz's key) to the URL"
    if not hmac.compare_digest(key.encode(), room.key.encode()):
        return CODE_WRONG, "wrong instructor key: use the live quiz's instructor_url"
    if len(room.instructors) >= MAX_INSTRUCTORS:
        return ROOM_FULL, f"{MAX_INSTRUCTORS} instructor connections are open already: close one first"
    return None


def quiz_routes(room: QuizRoom) -> list[BaseRoute]:
    """The two WebSocket routes, to mount next to other routes (a classroom's, say) on one app."""
    return [WebSocketRoute(STUDENT_PATH, room.student), WebSocketRoute(INSTRUCTOR_PATH, room.instructor)]


def live_quiz_app(room: QuizRoom, chat: Room | None = None) -> Starlette:
    """A Starlette app serving the quiz (and, given a classroom `Room`, its chat at /chat with its own rules).

    The room is `app.state.quiz`, the chat room `app.state.room`; the lifespan's end stops the quiz's timer and
    both rooms' writer tasks.
    """
    routes = quiz_routes(room)
    if chat is not None:
        routes.append(WebSocketRoute(PATH, chat.handle))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await room.close_all()
        if chat is not None:
            await chat.hub.aclose()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.quiz = room
    app.state.room = chat
    return app
