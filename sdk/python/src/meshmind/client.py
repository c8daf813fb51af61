"""A client of a meshmind node's HTTP API: read the network, query its miners, and send signed
transactions, waiting until a finalized snapshot applied them if asked."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import httpx
from google.protobuf.message import DecodeError, Message

from meshmind import tx as txs
from meshmind import v1
from meshmind.errors import ApiError, MeshmindError, TimeoutError
from meshmind.keys import Keypair, key_bytes
from meshmind.light import Verified, Walker
from meshmind.signing import content_hash, encode

#: The API a node serves by default.
DEFAULT_API = "http://127.0.0.1:7410"


@dataclass
class Answer:
    """One miner's answer to a query."""

    miner: str
    """The answering miner's hotkey (hex)."""
    output: bytes
    """The output's bytes."""
    elapsed_us: int
    """The miner's time, in microseconds."""
    content_type: str = ""
    """What the output holds, as the miner says (a media type), or empty."""

    @property
    def text(self) -> str:
        """The output as text (bad UTF-8 replaced)."""
        return self.output.decode("utf-8", errors="replace")


@dataclass
class StreamEnd:
    """How a streamed answer ended: the miner's signed end."""

    miner: str
    elapsed_us: int
    chunks: int


@dataclass
class Receipt:
    """A transaction a node took: its hash, the nonce it used, and whether a finalized snapshot
    has applied it (when waited for)."""

    hash: str
    nonce: int
    new: bool
    finalized: bool = False


@dataclass
class Stream:
    """A streamed answer: iterate for its pieces as the miner produces them; ``end`` is set once
    the iteration is over."""

    _lines: Iterator[str]
    _close: Any
    end: StreamEnd | None = None
    answers: list[Answer] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        try:
            for line in self._lines:
                if not line.strip():
                    continue
                piece = json.loads(line)
                if "chunk" in piece:
                    yield piece["chunk"]
                elif "done" in piece:
                    self.end = StreamEnd(piece["miner"], piece["elapsed_us"], piece["chunks"])
                elif "error" in piece:
                    error = piece["error"]
                    raise ApiError(200, error.get("code", ""), error.get("message", ""))
                else:
                    # A whole answer in one line: yielded as one piece.
                    self.answers = [_answer(a, False) for a in piece.get("answers", [piece])]
                    for answer in self.answers:
                        yield answer.text
        finally:
            self._close()


def _answer(body: dict, base64_output: bool) -> Answer:
    output = body["output"]
    return Answer(
        miner=body["miner"],
        output=base64.b64decode(output) if base64_output else output.encode(),
        elapsed_us=body["elapsed_us"],
        content_type=body.get("content_type", ""),
    )


class Client:
    """A node's API (``http://host:port``): a validator's or an observer's to send transactions
    and queries, any node's to read."""

    def __init__(self, api: str = DEFAULT_API, timeout: float = 10.0):
        self.api = api.rstrip("/")
        self._http = httpx.Client(base_url=self.api, timeout=timeout)
        self._network_id: bytes | None = None

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Reading.

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "", response.text[:200]
            raise ApiError(response.status_code, code, message)
        return response

    def get(self, path: str) -> Any:
        """``GET path``, its JSON."""
        return self._check(self._http.get(path)).json()

    def _post(self, path: str, body: dict, timeout: float | None = None) -> Any:
        extra = {} if timeout is None else {"timeout": timeout}
        return self._check(self._http.post(path, json=body, **extra)).json()

    def _message(self, path: str, kind: type[Message]) -> Any:
        raw = self._check(self._http.get(path)).content
        message = kind()
        try:
            message.ParseFromString(raw)
        except DecodeError as error:
            raise MeshmindError(f"{path}: not a {kind.DESCRIPTOR.full_name}: {error}") from None
        return message

    def status(self) -> dict:
        """``/status``: peer id, role, network, epoch, subnets, consensus progress, standing."""
        return self.get("/status")

    def network_id(self) -> bytes:
        """The network id, as this node says (pin it yourself where it matters)."""
        if self._network_id is None:
            self._network_id = bytes.fromhex(self.status()["network_id"])
        return self._network_id

    def peers(self) -> list[str]:
        """Connected peers' ids."""
        return self.get("/peers")

    def metagraph(self, subnet: int) -> dict:
        """``/metagraph/<subnet>``: the miners this node knows, and the chain's neurons with stake,
        incentive, dividends and emission."""
        return self.get(f"/metagraph/{subnet}")

    def weights(self, subnet: int) -> dict:
        """``/weights/<subnet>``: the weight vectors a validator set."""
        return self.get(f"/weights/{subnet}")

    def economy(self) -> dict:
        """``/economy``: supply, rules, subnets, finalizers, unbonding stake."""
        return self.get("/economy")

    def subnets(self) -> list[dict]:
        """``/subnets``: every subnet (name, tasks, owner, burn, neurons, permits, stake, rules)."""
        return self.get("/subnets")

    def subnet(self, subnet: int) -> dict:
        """``/subnets/<id>``: one subnet."""
        return self.get(f"/subnets/{subnet}")

    def delegates(self) -> list[dict]:
        """``/delegates``: validator hotkeys with take, stake, nominators and recent return."""
        return self.get("/delegates")

    def delegate(self, hotkey: bytes | str | Keypair) -> dict:
        """``/delegates/<hotkey>``: one delegate with every stake behind it."""
        return self.get(f"/delegates/{key_bytes(hotkey).hex()}")

    def account(self, coldkey: bytes | str | Keypair) -> dict:
        """``/accounts/<coldkey>``: balance, nonce, stakes, delegations and unbonding stake."""
        return self.get(f"/accounts/{key_bytes(coldkey).hex()}")

    def snapshot(self, epoch: int) -> dict:
        """``/snapshots/<epoch>``, as JSON (unverified: :meth:`finalized` and :meth:`verify_chain` check)."""
        return self.get(f"/snapshots/{epoch}")

    def evidence(self) -> list:
        """Evidence of misbehaviour the node holds."""
        return self.get("/evidence")

    def models(self) -> list[str]:
        """The ``<subnet>/<task>`` models the OpenAI-compatible routes serve."""
        return [m["id"] for m in self.get("/v1/models")["data"]]

    def genesis(self) -> "v1.Genesis":
        """The genesis, as the node holds it (its hash is the network id)."""
        return self._message("/genesis", v1.Genesis)

    def finalized(self, epoch: int) -> "v1.FinalizedSnapshot":
        """The finalized snapshot of ``epoch`` with its certificate, unverified."""
        return self._message(f"/finalized/{epoch}", v1.FinalizedSnapshot)

    def head(self) -> int | None:
        """The highest finalized epoch, if any."""
        return self.status()["consensus"]["finalized_epoch"]

    def verify_chain(self, up_to: int | None = None, network_id: bytes | str | None = None) -> Verified:
        """Walks the chain from genesis to ``up_to`` (default: the head), checking every
        snapshot's link to its parent and its certificate against the set the previous snapshot
        handed over to; raises :class:`~meshmind.errors.VerificationError` at the first fault.
        ``network_id`` pins the network (default: the node's word for it)."""
        pinned = bytes.fromhex(network_id) if isinstance(network_id, str) else network_id
        walker = Walker(self.genesis(), pinned or self.network_id())
        last = self.head() if up_to is None else up_to
        if last is None:
            raise MeshmindError("nothing finalized yet")
        verified = None
        for epoch in range(last + 1):
            verified = walker.step(self.finalized(epoch))
        assert verified is not None
        return verified

    # Queries.

    def _query_body(self, subnet, task, data, deadline_ms, content_type, want_all, stream) -> tuple[dict, bool]:
        binary = isinstance(data, (bytes, bytearray))
        body: dict[str, Any] = {
            "subnet": subnet,
            "task": task,
            "input": base64.b64encode(data).decode() if binary else data,
            "want_all": want_all,
            "stream": stream,
        }
        if binary:
            body["encoding"] = "base64"
        if deadline_ms is not None:
            body["deadline_ms"] = deadline_ms
        if content_type is not None:
            body["content_type"] = content_type
        return body, binary

    def query(
        self,
        subnet: int,
        task: str,
        input: str | bytes,
        *,
        deadline_ms: int | None = None,
        content_type: str | None = None,
    ) -> Answer:
        """Asks the subnet's best miners through the node; the first valid, signed answer. Bytes
        travel as base64 and come back as bytes."""
        body, binary = self._query_body(subnet, task, input, deadline_ms, content_type, False, False)
        timeout = (deadline_ms or 5_000) / 1000 + 5
        return _answer(self._post("/query", body, timeout), binary)

    def query_all(
        self,
        subnet: int,
        task: str,
        input: str | bytes,
        *,
        deadline_ms: int | None = None,
        content_type: str | None = None,
    ) -> list[Answer]:
        """Every valid answer of the subnet's top miners."""
        body, binary = self._query_body(subnet, task, input, deadline_ms, content_type, True, False)
        timeout = (deadline_ms or 5_000) / 1000 + 5
        reply = self._post("/query", body, timeout)
        return [_answer(a, binary) for a in reply["answers"]]

    def stream(
        self,
        subnet: int,
        task: str,
        input: str,
        *,
        deadline_ms: int | None = None,
        content_type: str | None = None,
    ) -> Stream:
        """Asks for an answer streamed as the miner produces it: iterate the result for its
        pieces (text)."""
        body, _ = self._query_body(subnet, task, input, deadline_ms, content_type, False, True)
        context = self._http.stream("POST", "/query", json=body, timeout=None)
        response = context.__enter__()
        if response.status_code >= 400:
            response.read()
            context.__exit__(None, None, None)
            self._check(response)
        return Stream(response.iter_lines(), lambda: context.__exit__(None, None, None))

    # Transactions.

    def nonce(self, coldkey: bytes | str | Keypair) -> int:
        """The nonce the account's next transaction must carry."""
        return int(self.account(coldkey)["nonce"])

    def submit(self, transaction: "v1.Transaction") -> Receipt:
        """Submits a signed transaction; the node checks and gossips it."""
        reply = self._post("/tx", {"tx": encode(transaction).hex()})
        assert reply["hash"] == content_hash(transaction).hex(), "the node hashed another transaction"
        return Receipt(hash=reply["hash"], nonce=transaction.nonce, new=reply["new"])

    def wait_applied(self, coldkey: bytes | str | Keypair, nonce: int, timeout: float = 60.0) -> None:
        """Waits until a finalized snapshot applied the account's transaction ``nonce``."""
        deadline = time.monotonic() + timeout
        while self.nonce(coldkey) <= nonce:
            if time.monotonic() > deadline:
                raise TimeoutError(f"transaction {nonce} of {key_bytes(coldkey).hex()} not finalized within {timeout} s")
            time.sleep(0.25)

    def send(self, kind: Message, coldkey: Keypair, *, wait: bool = True, nonce: int | None = None) -> Receipt:
        """Signs ``kind`` (a :mod:`meshmind.tx` message) with ``coldkey`` at the account's next
        nonce and submits it; with ``wait``, returns once a finalized snapshot applied it."""
        if nonce is None:
            nonce = self.nonce(coldkey)
        receipt = self.submit(txs.transaction(self.network_id(), nonce, kind, coldkey))
        if wait:
            self.wait_applied(coldkey, nonce)
            receipt.finalized = True
        return receipt

    def transfer(self, coldkey: Keypair, to: bytes | str | Keypair, amount: int, *, wait: bool = True) -> Receipt:
        """Moves ``amount`` to the coldkey ``to``."""
        return self.send(txs.transfer(to, amount), coldkey, wait=wait)

    def stake(
        self, coldkey: Keypair, hotkey: bytes | str | Keypair, subnet: int, amount: int, *, wait: bool = True
    ) -> Receipt:
        """Stakes ``amount`` behind ``hotkey`` on ``subnet``."""
        return self.send(txs.add_stake(hotkey, subnet, amount), coldkey, wait=wait)

    def unstake(
        self, coldkey: Keypair, hotkey: bytes | str | Keypair, subnet: int, amount: int, *, wait: bool = True
    ) -> Receipt:
        """Returns ``amount`` of stake behind ``hotkey`` to the balance."""
        return self.send(txs.remove_stake(hotkey, subnet, amount), coldkey, wait=wait)

    def register(
        self, coldkey: Keypair, hotkey: Keypair, subnet: int, *, max_burn: int | None = None, wait: bool = True
    ) -> Receipt:
        """Registers ``hotkey`` on ``subnet`` under ``coldkey``, burning at most ``max_burn``
        (default: the price now)."""
        if max_burn is None:
            chain = self.metagraph(subnet).get("chain")
            if not chain:
                raise MeshmindError(f"subnet {subnet} has no burn price at this node")
            max_burn = chain["burn"]
        kind = txs.register(hotkey, subnet, max_burn, self.network_id(), coldkey)
        return self.send(kind, coldkey, wait=wait)

    def declare_finalizer(self, coldkey: Keypair, hotkey: Keypair, *, wait: bool = True) -> Receipt:
        """Declares ``hotkey`` a candidate finalizer under ``coldkey``."""
        return self.send(txs.declare_finalizer(hotkey, self.network_id(), coldkey), coldkey, wait=wait)

    def undeclare_finalizer(self, coldkey: Keypair, hotkey: bytes | str | Keypair, *, wait: bool = True) -> Receipt:
        """Withdraws ``hotkey``'s finalizer declaration."""
        return self.send(txs.undeclare_finalizer(hotkey), coldkey, wait=wait)

    def set_subnet_params(
        self, coldkey: Keypair, subnet: int, values: dict[str, int | bool], *, wait: bool = True
    ) -> Receipt:
        """Changes parameters of a subnet ``coldkey`` owns, from the next epoch."""
        return self.send(txs.set_subnet_params(subnet, values), coldkey, wait=wait)

    def set_take(self, coldkey: Keypair, hotkey: bytes | str | Keypair, take_per_mille: int, *, wait: bool = True) -> Receipt:
        """Sets the take of a hotkey ``coldkey`` owns."""
        return self.send(txs.set_take(hotkey, take_per_mille), coldkey, wait=wait)

    def move_stake(
        self,
        coldkey: Keypair,
        from_hotkey: bytes | str | Keypair,
        from_subnet: int,
        to_hotkey: bytes | str | Keypair,
        to_subnet: int,
        amount: int,
        *,
        wait: bool = True,
    ) -> Receipt:
        """Moves ``amount`` of stake to another hotkey or subnet."""
        return self.send(txs.move_stake(from_hotkey, from_subnet, to_hotkey, to_subnet, amount), coldkey, wait=wait)

    def swap_hotkey(self, coldkey: Keypair, old_hotkey: bytes | str | Keypair, new_hotkey: Keypair, *, wait: bool = True) -> Receipt:
        """Replaces ``old_hotkey`` with ``new_hotkey`` at the next epoch."""
        return self.send(txs.swap_hotkey(old_hotkey, new_hotkey, self.network_id(), coldkey), coldkey, wait=wait)

    def create_subnet(
        self, coldkey: Keypair, name: str, tasks: list[str], *, max_lock: int | None = None, wait: bool = True
    ) -> Receipt:
        """Creates a subnet owned by ``coldkey``, locking at most ``max_lock`` (default: the cost
        now)."""
        if max_lock is None:
            max_lock = int(self.economy()["params"]["subnet_lock"])
        return self.send(txs.create_subnet(name, tasks, max_lock), coldkey, wait=wait)
