"""Canonical encoding, content hashes and domain-separated signing, exactly as the Rust side does.

What is signed is the 32-byte digest ``blake3.derive_key(domain, encoding)``, where ``encoding``
is the message's protobuf encoding with its ``signature`` field empty; a message's hash is
blake3 of its encoding.
"""

from __future__ import annotations

import enum

import blake3
from google.protobuf.message import Message

from meshmind.errors import SignatureError
from meshmind.keys import Keypair, verify


class Domain(str, enum.Enum):
    """The signing domain of each kind of signed message."""

    ENVELOPE = "meshmind/v1/envelope"
    CAPABILITY_AD = "meshmind/v1/capability_ad"
    QUERY_RESPONSE = "meshmind/v1/query_response"
    WEIGHT_COMMIT = "meshmind/v1/weight_commit"
    WEIGHT_REVEAL = "meshmind/v1/weight_reveal"
    PROPOSAL = "meshmind/v1/proposal"
    VOTE = "meshmind/v1/vote"
    TRANSACTION = "meshmind/v1/transaction"
    HOTKEY_CONSENT = "meshmind/v1/hotkey_consent"
    FINALIZER_CONSENT = "meshmind/v1/finalizer_consent"
    SWAP_CONSENT = "meshmind/v1/swap_consent"


#: Each signed message type: its domain and the field holding the signer's key.
SIGNED: dict[str, tuple[Domain, str]] = {
    "meshmind.v1.SignedEnvelope": (Domain.ENVELOPE, "signer"),
    "meshmind.v1.CapabilityAd": (Domain.CAPABILITY_AD, "miner"),
    "meshmind.v1.QueryResponse": (Domain.QUERY_RESPONSE, "miner"),
    "meshmind.v1.WeightCommit": (Domain.WEIGHT_COMMIT, "validator"),
    "meshmind.v1.WeightReveal": (Domain.WEIGHT_REVEAL, "validator"),
    "meshmind.v1.Proposal": (Domain.PROPOSAL, "proposer"),
    "meshmind.v1.Vote": (Domain.VOTE, "validator"),
    "meshmind.v1.Transaction": (Domain.TRANSACTION, "coldkey"),
    "meshmind.v1.HotkeyConsent": (Domain.HOTKEY_CONSENT, "hotkey"),
    "meshmind.v1.FinalizerConsent": (Domain.FINALIZER_CONSENT, "hotkey"),
    "meshmind.v1.SwapConsent": (Domain.SWAP_CONSENT, "hotkey"),
}


def encode(message: Message) -> bytes:
    """The canonical encoding: fields in tag order, defaults left out, nothing unknown."""
    message.DiscardUnknownFields()
    return message.SerializeToString(deterministic=True)


def content_hash(message: Message) -> bytes:
    """blake3 of the canonical encoding: a transaction's, ad's or genesis's id."""
    return blake3.blake3(encode(message)).digest()


def derive(domain: str, data: bytes) -> bytes:
    """blake3's key derivation of ``data`` under the context ``domain``."""
    return blake3.blake3(data, derive_key_context=domain).digest()


def _kind(message: Message) -> tuple[Domain, str]:
    name = message.DESCRIPTOR.full_name
    if name not in SIGNED:
        raise TypeError(f"{name} is not a signed message")
    return SIGNED[name]


def signing_digest(message: Message) -> bytes:
    """The digest a signature of ``message`` covers: the message with its signature empty."""
    domain, _ = _kind(message)
    unsigned = type(message)()
    unsigned.CopyFrom(message)
    unsigned.ClearField("signature")
    return derive(domain.value, encode(unsigned))


def sign(message: Message, keypair: Keypair) -> Message:
    """Sets the signer field to ``keypair``'s public key and signs; returns the message."""
    _, signer = _kind(message)
    setattr(message, signer, keypair.public_key)
    message.ClearField("signature")
    message.signature = keypair.sign(signing_digest(message))
    return message


def verify_signature(message: Message) -> None:
    """Checks a signed message's signature against its signer field; raises
    :class:`~meshmind.errors.SignatureError` if it does not verify."""
    _, signer = _kind(message)
    verify(getattr(message, signer), signing_digest(message), message.signature)


def signer(message: Message) -> bytes:
    """The signer's public key field of a signed message."""
    return getattr(message, _kind(message)[1])


__all__ = [
    "Domain",
    "SIGNED",
    "SignatureError",
    "content_hash",
    "derive",
    "encode",
    "sign",
    "signer",
    "signing_digest",
    "verify_signature",
]
