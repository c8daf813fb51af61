"""meshmind: sign transactions, read and verify the chain, query miners, serve models and score
them, against a meshmind network's nodes.

    from meshmind import Client, Wallet
    client = Client("http://127.0.0.1:7410")
    wallet = Wallet.load("coldkey.json")
    client.transfer(wallet.coldkey, "ab12...", 1_000)           # waits until finalized
    print(client.query(1, "sort", "pear apple fig").text)
"""

from meshmind import v1
from meshmind.client import Answer, Client, Receipt, Stream, StreamEnd
from meshmind.errors import (
    ApiError,
    KeyFileError,
    MeshmindError,
    SignatureError,
    TimeoutError,
    VerificationError,
)
from meshmind.keys import Keypair, peer_id
from meshmind.light import Verified, Walker, verify_certificate
from meshmind.miner import Caller, Miner, Request
from meshmind.scorer import Challenge, MinerAnswer, Round, Scorer
from meshmind.signing import Domain, content_hash, encode, sign, signing_digest, verify_signature
from meshmind.wallet import Wallet, read_key, write_key

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "ApiError",
    "Caller",
    "Challenge",
    "Client",
    "Domain",
    "KeyFileError",
    "Keypair",
    "MeshmindError",
    "Miner",
    "MinerAnswer",
    "Receipt",
    "Request",
    "Round",
    "Scorer",
    "SignatureError",
    "Stream",
    "StreamEnd",
    "TimeoutError",
    "Verified",
    "VerificationError",
    "Walker",
    "Wallet",
    "content_hash",
    "encode",
    "peer_id",
    "read_key",
    "sign",
    "signing_digest",
    "v1",
    "verify_certificate",
    "verify_signature",
    "write_key",
]
