"""Key files, the same the ``meshmind`` CLI and nodes read and write: JSON holding a hotkey or a
coldkey, written readable by its owner only and refused when others can read it."""

from __future__ import annotations

import json
import os
import pathlib
import stat

from meshmind.errors import KeyFileError
from meshmind.keys import Keypair, peer_id

#: Largest key file read, in bytes.
MAX_KEY_FILE_LEN = 4096

HOTKEY = "hotkey"
COLDKEY = "coldkey"
KINDS = (HOTKEY, COLDKEY)


def write_key(path: str | os.PathLike, keypair: Keypair, kind: str) -> pathlib.Path:
    """Writes ``keypair`` as a new key file of ``kind`` (``hotkey`` or ``coldkey``), mode 0600;
    refuses to replace an existing file."""
    if kind not in KINDS:
        raise ValueError(f"kind is hotkey or coldkey, not {kind!r}")
    path = pathlib.Path(path)
    document = {
        "kind": kind,
        "public_key": keypair.public_hex,
        "secret_key": keypair.seed.hex(),
    }
    if kind == HOTKEY:
        document["peer_id"] = keypair.peer_id
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    except OSError as error:
        raise KeyFileError(f"{path}: {error.strerror}") from None
    with os.fdopen(fd, "w") as file:
        # The mode above is filtered by the umask; set it exactly.
        os.fchmod(file.fileno(), 0o600)
        file.write(json.dumps(document, indent=2) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return path


def read_key(path: str | os.PathLike, kind: str | None = None) -> Keypair:
    """Reads a key file, refusing it if group or others can read it, if it is malformed, or if
    ``kind`` is given and it holds the other kind of key."""
    path = pathlib.Path(path)
    try:
        info = path.stat()
    except OSError as error:
        raise KeyFileError(f"{path}: {error.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: permissions {mode:04o} let other users read the secret key; run `chmod 600 {path}`"
        )
    if info.st_size > MAX_KEY_FILE_LEN:
        raise KeyFileError(f"{path}: not a valid key file: {info.st_size} bytes is larger than a key file can be")

    def malformed(reason: str) -> KeyFileError:
        return KeyFileError(f"{path}: not a valid key file: {reason}")

    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise malformed(str(error)) from None
    if not isinstance(document, dict):
        raise malformed("not a JSON object")
    unknown = set(document) - {"kind", "public_key", "secret_key", "peer_id"}
    if unknown:
        raise malformed(f"unknown fields {sorted(unknown)}")
    found = document.get("kind")
    if found not in KINDS:
        raise malformed(f"kind is hotkey or coldkey, not {found!r}")
    try:
        keypair = Keypair(bytes.fromhex(document.get("secret_key", "")))
    except ValueError as error:
        raise malformed(f"secret_key: {error}") from None
    if document.get("public_key") != keypair.public_hex:
        raise malformed("public_key does not belong to secret_key")
    if "peer_id" in document and document["peer_id"] != peer_id(keypair.public_key):
        raise malformed("peer_id does not belong to the key")
    if kind is not None and found != kind:
        raise malformed(f"holds a {found}, expected a {kind}")
    return keypair


class Wallet:
    """An operator's keys: a coldkey (funds and stake) and, for a node, a hotkey; each loaded from
    or written to its key file."""

    def __init__(self, coldkey: Keypair, hotkey: Keypair | None = None):
        self.coldkey = coldkey
        self.hotkey = hotkey

    @classmethod
    def load(cls, coldkey: str | os.PathLike, hotkey: str | os.PathLike | None = None) -> "Wallet":
        """The wallet of these key files (a node's data directory holds ``coldkey.json`` and
        ``hotkey.json``)."""
        return cls(read_key(coldkey, COLDKEY), read_key(hotkey, HOTKEY) if hotkey is not None else None)

    @classmethod
    def create(cls, folder: str | os.PathLike, hotkey: bool = True) -> "Wallet":
        """New keys written to ``folder/coldkey.json`` (and ``folder/hotkey.json``)."""
        folder = pathlib.Path(folder)
        wallet = cls(Keypair.generate(), Keypair.generate() if hotkey else None)
        write_key(folder / "coldkey.json", wallet.coldkey, COLDKEY)
        if wallet.hotkey is not None:
            write_key(folder / "hotkey.json", wallet.hotkey, HOTKEY)
        return wallet

    def __repr__(self) -> str:
        hot = self.hotkey.public_hex if self.hotkey else None
        return f"Wallet(coldkey={self.coldkey.public_hex}, hotkey={hot})"
