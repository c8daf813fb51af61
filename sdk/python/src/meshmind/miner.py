"""Serve a Python model on meshmind: a miner node's ``http`` backend posts each query here, with
the caller's hotkey and stake, and relays the answer (or its streamed pieces) back, signed.

    miner = Miner()

    @miner.forward("sort")
    def sort(request: Request) -> str:
        return " ".join(sorted(request.text.split()))

    miner.serve(port=8091)   # then [miner] backend = "http", url = "http://127.0.0.1:8091/"
"""

from __future__ import annotations

import base64
import heapq
import inspect
import itertools
import math
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from meshmind.serve import Reply, Served


@dataclass(frozen=True)
class Caller:
    """Who sent a query, as the miner node knows them from the finalized state."""

    hotkey: str
    """The caller's hotkey (hex; empty if unknown)."""
    stake: int
    """The stake behind it on the miner's subnet."""
    permit: bool
    """Whether it holds a validator permit on the subnet."""


@dataclass(frozen=True)
class Request:
    """One query as the miner node hands it over."""

    task: str
    data: bytes
    """The input's bytes."""
    content_type: str
    """What the input holds (a media type), or empty."""
    caller: Caller | None
    stream: bool
    """Whether the caller asked for the answer in pieces."""

    @property
    def text(self) -> str:
        """The input as text."""
        return self.data.decode("utf-8", errors="replace")


#: A task's handler: an answer (text or bytes), or, to stream, an iterable of text pieces.
Forward = Callable[[Request], "str | bytes | Iterable[str]"]


class Miner(Served):
    """A model server for a miner node's ``http`` backend: per-task ``forward`` handlers, an
    optional ``blacklist`` of callers, and a ``priority`` that orders callers waiting when more
    than ``max_concurrency`` queries run at once."""

    default_port = 8091

    def __init__(self, max_concurrency: int = 8):
        if max_concurrency < 1:
            raise ValueError("max_concurrency is at least 1")
        self._forward: dict[str, Forward] = {}
        self._blacklist: Callable[[Caller | None], bool | str] = lambda caller: False
        self._priority: Callable[[Caller | None], float] = lambda caller: caller.stake if caller else 0.0
        self._free = max_concurrency
        self._waiting: list[tuple[float, int, threading.Event]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def forward(self, task: str) -> Callable[[Forward], Forward]:
        """Decorates the handler of ``task``."""

        def register(handler: Forward) -> Forward:
            self._forward[task] = handler
            return handler

        return register

    def blacklist(self, check: Callable[[Caller | None], bool | str]) -> Callable:
        """Decorates a check that refuses a caller: true, or a reason (text), refuses."""
        self._blacklist = check
        return check

    def priority(self, rank: Callable[[Caller | None], float]) -> Callable:
        """Decorates a ranking of callers (higher first, when queries wait); default: stake."""
        self._priority = rank
        return rank

    @property
    def tasks(self) -> list[str]:
        """The tasks served."""
        return sorted(self._forward)

    def _acquire(self, rank: float) -> None:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return
            turn = threading.Event()
            heapq.heappush(self._waiting, (-rank, next(self._order), turn))
        turn.wait()

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                heapq.heappop(self._waiting)[2].set()
            else:
                self._free += 1

    def _pieces(self, answer: Iterable) -> Iterable[dict]:
        try:
            for piece in answer:
                yield {"chunk": str(piece)}
        finally:
            self._release()

    def handle(self, body: dict) -> Reply:
        """Answers one posted query (the node's ``http`` backend protocol)."""
        task = body.get("task", "")
        handler = self._forward.get(task)
        if handler is None:
            return 404, {"error": f"task {task!r} is not served here (serving {self.tasks})"}
        if "input_base64" in body:
            data = base64.b64decode(body["input_base64"])
        else:
            data = str(body.get("input", "")).encode()
        who = body.get("caller")
        caller = Caller(who.get("hotkey", ""), int(who.get("stake", 0)), bool(who.get("permit"))) if who else None
        refused = self._blacklist(caller)
        if refused:
            reason = refused if isinstance(refused, str) else "caller refused"
            return 403, {"error": reason}
        request = Request(task, data, body.get("content_type", ""), caller, bool(body.get("stream")))
        rank = float(self._priority(caller))
        self._acquire(rank if math.isfinite(rank) else 0.0)
        streaming = False
        try:
            answer = handler(request)
            if inspect.isgenerator(answer) or (not isinstance(answer, (str, bytes)) and isinstance(answer, Iterable)):
                if request.stream:
                    # Each piece goes out as it is produced; the slot is held until the last.
                    streaming = True
                    return self._pieces(answer)
                answer = "".join(str(piece) for piece in answer)
        finally:
            if not streaming:
                self._release()
        if isinstance(answer, bytes):
            return 200, {"output_base64": base64.b64encode(answer).decode()}
        return 200, {"output": str(answer)}
