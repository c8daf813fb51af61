"""Ed25519 keys as meshmind uses them: hotkeys (a node's identity, signer of votes, weights and
answers) and coldkeys (accounts that own funds and stake)."""

from __future__ import annotations

import os

import nacl.exceptions
import nacl.signing

from meshmind.errors import SignatureError

SEED_LEN = 32
PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _BASE58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def peer_id(public_key: bytes) -> str:
    """The libp2p peer id of an ed25519 public key (``12D3KooW...``)."""
    if len(public_key) != PUBLIC_KEY_LEN:
        raise ValueError(f"a public key is {PUBLIC_KEY_LEN} bytes, not {len(public_key)}")
    # The key as libp2p's PublicKey protobuf (type Ed25519, data), in an identity multihash.
    encoded = bytes([0x08, 0x01, 0x12, 0x20]) + public_key
    return _base58(bytes([0x00, len(encoded)]) + encoded)


def key_bytes(key: bytes | str | "Keypair") -> bytes:
    """A 32-byte public key from bytes, hex, or a keypair."""
    if isinstance(key, Keypair):
        return key.public_key
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key)
        except ValueError as error:
            raise ValueError(f"not a hex key: {error}") from None
    if len(key) != PUBLIC_KEY_LEN:
        raise ValueError(f"a public key is {PUBLIC_KEY_LEN} bytes, not {len(key)}")
    return bytes(key)


class Keypair:
    """An ed25519 keypair from its 32-byte secret seed."""

    def __init__(self, seed: bytes):
        if len(seed) != SEED_LEN:
            raise ValueError(f"a secret key is {SEED_LEN} bytes, not {len(seed)}")
        self._signing = nacl.signing.SigningKey(bytes(seed))

    @classmethod
    def generate(cls) -> "Keypair":
        """A new random keypair."""
        return cls(os.urandom(SEED_LEN))

    @property
    def seed(self) -> bytes:
        """The secret seed; handle with care."""
        return bytes(self._signing)

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return bytes(self._signing.verify_key)

    @property
    def public_hex(self) -> str:
        """The public key in lower-case hex, as the API and CLI write keys."""
        return self.public_key.hex()

    @property
    def peer_id(self) -> str:
        """The libp2p peer id of this key (a hotkey's node identity)."""
        return peer_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte signature of ``data``."""
        return self._signing.sign(data).signature

    def __repr__(self) -> str:
        return f"Keypair({self.public_hex})"


def verify(public_key: bytes, data: bytes, signature: bytes) -> None:
    """Checks an ed25519 signature; raises :class:`SignatureError` if it does not verify."""
    if len(public_key) != PUBLIC_KEY_LEN:
        raise SignatureError(f"malformed signer key: {len(public_key)} bytes")
    if len(signature) != SIGNATURE_LEN:
        raise SignatureError(f"malformed signature: {len(signature)} bytes")
    try:
        nacl.signing.VerifyKey(public_key).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise SignatureError("signature does not verify") from None
