"""Judge a subnet's miners in Python: a validator's ``http`` scorer posts here to make each
challenge and to score the miners' answers to it.

    scorer = Scorer()

    @scorer.challenge("sort")
    def make(task: str) -> Challenge:
        words = random.sample(WORDS, 6)
        return Challenge(input=" ".join(words), expected=" ".join(sorted(words)))

    @scorer.score("sort")
    def judge(round: Round) -> list[float]:
        return [1.0 if a.text == round.expected else 0.0 for a in round.answers]

    scorer.serve(port=8092)  # then [validator.scorers.sort] kind = "http", url = "http://127.0.0.1:8092/"
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Callable

from meshmind.serve import Reply, Served


@dataclass(frozen=True)
class Challenge:
    """A challenge: ``input`` goes to the miners (as ``content_type``, if given); ``expected``
    never leaves the validator and comes back when scoring."""

    input: str
    expected: str = ""
    content_type: str = ""


@dataclass(frozen=True)
class MinerAnswer:
    """One miner's answer to score."""

    miner: str
    """Its hotkey (hex)."""
    output: bytes
    elapsed_ms: float

    @property
    def text(self) -> str:
        """The output as text (bad UTF-8 replaced)."""
        return self.output.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Round:
    """A challenge and the answers to score, in order."""

    task: str
    input: str
    expected: str
    answers: list[MinerAnswer]


class Scorer(Served):
    """A subnet owner's incentive mechanism: per-task ``challenge`` and ``score`` handlers."""

    default_port = 8092

    def __init__(self) -> None:
        self._challenge: dict[str, Callable[[str], Challenge]] = {}
        self._score: dict[str, Callable[[Round], list[float]]] = {}

    def challenge(self, task: str) -> Callable:
        """Decorates the maker of ``task``'s challenges."""

        def register(make: Callable[[str], Challenge]) -> Callable[[str], Challenge]:
            self._challenge[task] = make
            return make

        return register

    def score(self, task: str) -> Callable:
        """Decorates the judge of ``task``'s answers: one score in [0, 1] per answer."""

        def register(judge: Callable[[Round], list[float]]) -> Callable[[Round], list[float]]:
            self._score[task] = judge
            return judge

        return register

    def handle(self, body: dict) -> Reply:
        """Answers one posted call (the validator's ``http`` scorer protocol)."""
        call = body.get("task")
        try:
            document = json.loads(body.get("input", ""))
        except ValueError as error:
            return 400, {"error": f"input is not JSON: {error}"}
        task = document.get("task", "")
        if call == "challenge":
            make = self._challenge.get(task)
            if make is None:
                return 404, {"error": f"no challenge for task {task!r}"}
            made = make(task)
            output = {"input": made.input, "expected": made.expected}
            if made.content_type:
                output["content_type"] = made.content_type
        elif call == "score":
            judge = self._score.get(task)
            if judge is None:
                return 404, {"error": f"no scoring for task {task!r}"}
            answers = [
                MinerAnswer(
                    miner=a.get("miner", ""),
                    output=base64.b64decode(a["output_base64"]) if "output_base64" in a else a.get("output", "").encode(),
                    elapsed_ms=float(a.get("elapsed_ms", 0)),
                )
                for a in document.get("answers", [])
            ]
            scores = [float(s) for s in judge(Round(task, document.get("input", ""), document.get("expected", ""), answers))]
            if len(scores) != len(answers) or not all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores):
                return 500, {"error": f"{len(answers)} scores in [0, 1] expected, got {scores}"}
            output = {"scores": scores}
        else:
            return 400, {"error": f"unknown call {call!r} (challenge, score)"}
        return 200, {"output": json.dumps(output)}
