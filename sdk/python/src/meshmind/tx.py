"""Transactions: each kind's message, the hotkey consents some need, and the signed envelope a
coldkey sends (``meshmind.v1.Transaction``)."""

from __future__ import annotations

from google.protobuf.message import Message

from meshmind import v1
from meshmind.keys import Keypair, key_bytes
from meshmind.signing import sign

#: The ``Transaction.kind`` field of each kind's message.
KIND_FIELDS = {
    "Transfer": "transfer",
    "AddStake": "add_stake",
    "RemoveStake": "remove_stake",
    "Register": "register",
    "CreateSubnet": "create_subnet",
    "DeclareFinalizer": "declare_finalizer",
    "UndeclareFinalizer": "undeclare_finalizer",
    "SetSubnetParams": "set_subnet_params",
    "SetTake": "set_take",
    "MoveStake": "move_stake",
    "SwapHotkey": "swap_hotkey",
}


def transaction(network_id: bytes, nonce: int, kind: Message, coldkey: Keypair) -> "v1.Transaction":
    """``kind`` (a :func:`transfer`, :func:`add_stake`, ... message) as a transaction of the
    network ``network_id`` with the account's next ``nonce``, signed by ``coldkey``."""
    field = KIND_FIELDS.get(kind.DESCRIPTOR.name)
    if field is None:
        raise TypeError(f"{kind.DESCRIPTOR.full_name} is not a transaction kind")
    tx = v1.Transaction(network_id=bytes(network_id), nonce=nonce)
    getattr(tx, field).CopyFrom(kind)
    return sign(tx, coldkey)


def transfer(to: bytes | str | Keypair, amount: int) -> "v1.Transfer":
    """Move ``amount`` of the signer's balance to the coldkey ``to``."""
    return v1.Transfer(to=key_bytes(to), amount=amount)


def add_stake(hotkey: bytes | str | Keypair, subnet: int, amount: int) -> "v1.AddStake":
    """Stake ``amount`` of the balance behind a registered ``hotkey`` on ``subnet``."""
    return v1.AddStake(hotkey=key_bytes(hotkey), subnet=subnet, amount=amount)


def remove_stake(hotkey: bytes | str | Keypair, subnet: int, amount: int) -> "v1.RemoveStake":
    """Return ``amount`` of stake to the balance (slowly, if the hotkey is a bonded finalizer)."""
    return v1.RemoveStake(hotkey=key_bytes(hotkey), subnet=subnet, amount=amount)


def register(
    hotkey: Keypair, subnet: int, max_burn: int, network_id: bytes, coldkey: bytes | str | Keypair
) -> "v1.Register":
    """Register ``hotkey`` on ``subnet`` under ``coldkey``, burning at most ``max_burn``; the
    hotkey signs its consent."""
    register = v1.Register(hotkey=hotkey.public_key, subnet=subnet, max_burn=max_burn)
    consent = v1.HotkeyConsent(network_id=bytes(network_id), coldkey=key_bytes(coldkey), subnet=subnet)
    register.hotkey_signature = sign(consent, hotkey).signature
    return register


def declare_finalizer(hotkey: Keypair, network_id: bytes, coldkey: bytes | str | Keypair) -> "v1.DeclareFinalizer":
    """Declare ``hotkey`` a candidate finalizer under ``coldkey`` (whose stake behind it is its
    voting power); the hotkey signs its consent."""
    consent = v1.FinalizerConsent(network_id=bytes(network_id), coldkey=key_bytes(coldkey))
    return v1.DeclareFinalizer(hotkey=hotkey.public_key, hotkey_signature=sign(consent, hotkey).signature)


def undeclare_finalizer(hotkey: bytes | str | Keypair) -> "v1.UndeclareFinalizer":
    """Withdraw a finalizer declaration (signed by the coldkey that declared it)."""
    return v1.UndeclareFinalizer(hotkey=key_bytes(hotkey))


def create_subnet(name: str, tasks: list[str], max_lock: int) -> "v1.CreateSubnet":
    """Create a subnet owned by the signer, locking at most ``max_lock``."""
    return v1.CreateSubnet(name=name, tasks=list(tasks), max_lock=max_lock)


def set_subnet_params(subnet: int, values: dict[str, int | bool]) -> "v1.SetSubnetParams":
    """Change parameters of a subnet the signer owns (``{"kappa": 40000, "tempo": 3}``), from the
    next epoch; ``Client.subnet(id)["params"]`` lists names and bounds."""
    return v1.SetSubnetParams(
        subnet=subnet,
        values=[v1.ParamValue(name=name, value=int(value)) for name, value in values.items()],
    )


def set_take(hotkey: bytes | str | Keypair, take_per_mille: int) -> "v1.SetTake":
    """Set the share (per mille, 0-180) of ``hotkey``'s dividends its owner, the signer, keeps."""
    return v1.SetTake(hotkey=key_bytes(hotkey), take_per_mille=take_per_mille)


def move_stake(
    from_hotkey: bytes | str | Keypair,
    from_subnet: int,
    to_hotkey: bytes | str | Keypair,
    to_subnet: int,
    amount: int,
) -> "v1.MoveStake":
    """Move ``amount`` of the signer's stake to another hotkey or subnet."""
    return v1.MoveStake(
        from_hotkey=key_bytes(from_hotkey),
        from_subnet=from_subnet,
        to_hotkey=key_bytes(to_hotkey),
        to_subnet=to_subnet,
        amount=amount,
    )


def swap_hotkey(
    old_hotkey: bytes | str | Keypair, new_hotkey: Keypair, network_id: bytes, coldkey: bytes | str | Keypair
) -> "v1.SwapHotkey":
    """Replace ``old_hotkey`` (owned by ``coldkey``, the signer) with ``new_hotkey`` at the next
    epoch; the new hotkey signs its consent."""
    old = key_bytes(old_hotkey)
    consent = v1.SwapConsent(network_id=bytes(network_id), coldkey=key_bytes(coldkey), old_hotkey=old)
    return v1.SwapHotkey(old_hotkey=old, hotkey=new_hotkey.public_key, hotkey_signature=sign(consent, new_hotkey).signature)
