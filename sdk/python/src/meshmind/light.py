"""Light verification of finalized snapshots: each certificate checked against the validator set
the chain names for its epoch, from the genesis on, without replaying the economy."""

from __future__ import annotations

from dataclasses import dataclass

from meshmind import v1
from meshmind.errors import SignatureError, VerificationError
from meshmind.keys import verify
from meshmind.signing import Domain, content_hash, derive, encode


def genesis_set(genesis: "v1.Genesis") -> "v1.ValidatorSet":
    """The set that finalizes epoch 0: the genesis validators, sorted by hotkey."""
    entries = sorted(genesis.validators, key=lambda v: v.hotkey)
    return v1.ValidatorSet(
        validators=[v1.ValidatorEntry(hotkey=v.hotkey, coldkey=v.coldkey, stake=v.stake) for v in entries]
    )


def verify_certificate(finalized: "v1.FinalizedSnapshot", validators: "v1.ValidatorSet", network_id: bytes) -> None:
    """Checks that ``finalized``'s certificate holds precommits of more than 2/3 of ``validators``'
    stake for its snapshot's header; raises :class:`VerificationError` naming what is wrong."""
    header = finalized.snapshot.header
    cert = finalized.certificate
    epoch = header.epoch

    def bad(reason: str) -> VerificationError:
        return VerificationError(f"epoch {epoch}: {reason}")

    valset_hash = content_hash(validators)
    if cert.network_id != network_id or header.network_id != network_id:
        raise bad("certificate or snapshot of another network")
    if cert.valset_hash != valset_hash or header.valset_hash != valset_hash:
        raise bad(f"signed by set {cert.valset_hash.hex()}, but the chain names {valset_hash.hex()} here")
    value_id = content_hash(header)
    if cert.epoch != epoch or cert.value_id != value_id:
        raise bad("the certificate is for another epoch or value")
    stake = {v.hotkey: v.stake for v in validators.validators}
    total = sum(stake.values())
    power = 0
    previous = b""
    for index, commit in enumerate(cert.signatures):
        if commit.validator <= previous:
            raise bad(f"signatures[{index}]: signers must be sorted and distinct")
        previous = commit.validator
        if commit.validator not in stake:
            raise bad(f"signatures[{index}]: signer is not in the validator set")
        vote = v1.Vote(
            network_id=network_id,
            epoch=epoch,
            round=cert.round,
            vote_type=v1.VOTE_TYPE_PRECOMMIT,
            value_id=value_id,
            valset_hash=valset_hash,
            validator=commit.validator,
        )
        try:
            verify(commit.validator, derive(Domain.VOTE.value, encode(vote)), commit.signature)
        except SignatureError as error:
            raise bad(f"signatures[{index}]: {error}") from None
        power += stake[commit.validator]
    if 3 * power <= 2 * total:
        raise bad(f"the certificate carries {power} of {total} stake, not more than 2/3")


@dataclass
class Verified:
    """A chain walked from genesis: the last epoch checked, its header hash, and the set that
    finalizes the next epoch."""

    epoch: int
    head_hash: bytes
    next_validators: "v1.ValidatorSet"


class Walker:
    """Follows a chain epoch by epoch from its genesis, checking links, hand-overs and certificates."""

    def __init__(self, genesis: "v1.Genesis", network_id: bytes):
        if content_hash(genesis) != network_id:
            raise VerificationError("the genesis does not hash to the network id")
        self.network_id = network_id
        self.validators = genesis_set(genesis)
        self.parent = network_id
        self.epoch = 0

    def step(self, finalized: "v1.FinalizedSnapshot") -> Verified:
        """Checks the next epoch's finalized snapshot and moves on to the set it hands over to."""
        header = finalized.snapshot.header
        if header.epoch != self.epoch:
            raise VerificationError(f"expected epoch {self.epoch}, got {header.epoch}")
        if header.parent_hash != self.parent:
            raise VerificationError(f"epoch {self.epoch}: its parent is not the previous snapshot")
        verify_certificate(finalized, self.validators, self.network_id)
        if finalized.snapshot.HasField("next_validators"):
            following = finalized.snapshot.next_validators
            if content_hash(following) != header.next_valset_hash:
                raise VerificationError(f"epoch {self.epoch}: next_validators does not match the header")
            self.validators = following
        elif header.next_valset_hash != content_hash(self.validators):
            raise VerificationError(f"epoch {self.epoch}: the header names a next set it does not carry")
        self.parent = content_hash(header)
        self.epoch += 1
        return Verified(epoch=header.epoch, head_hash=self.parent, next_validators=self.validators)
