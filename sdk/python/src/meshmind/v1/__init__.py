"""The meshmind v1 wire messages (``meshmind.v1.Transaction``, ``meshmind.v1.Vote``, ...),
generated from the protocol's ``.proto`` files when this package was built, with their enums' values."""

import importlib as _importlib

_SCHEMAS = (
    "common",
    "consensus",
    "envelope",
    "genesis",
    "gossip",
    "ledger",
    "query",
    "state",
    "sync",
    "tx",
    "wal",
    "weights",
)

for _schema in _SCHEMAS:
    _module = _importlib.import_module(f"{__name__}.{_schema}_pb2")
    for _name in (*_module.DESCRIPTOR.message_types_by_name, *_module.DESCRIPTOR.enum_types_by_name):
        globals()[_name] = getattr(_module, _name)
    # Top-level enum values (``VOTE_TYPE_PRECOMMIT``), as the generated modules have them.
    for _enum in _module.DESCRIPTOR.enum_types_by_name.values():
        for _value in _enum.values:
            globals()[_value.name] = _value.number
