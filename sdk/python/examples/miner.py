"""A miner wrapping a Python model: the miner node's `http` backend posts each query here.

Run it, then point a miner node at it in its config.toml and restart the node:

    [miner]
    backend = "http"
    url = "http://127.0.0.1:8091/"
    tasks = ["sort"]
"""

import meshmind

miner = meshmind.Miner(max_concurrency=4)


@miner.forward("sort")
def sort(request: meshmind.Request):
    """The model: sorts the words of its input (replace with a call into your own model)."""
    words = sorted(request.text.split())
    if request.stream:
        # Pieces are relayed to the caller as they are produced.
        return (word + " " for word in words)
    return " ".join(words)


@miner.blacklist
def validators_only(caller):
    """Refuse callers without a validator permit (return a reason, or nothing to serve)."""
    return None if caller and caller.permit else "only validators are served here"


@miner.priority
def by_stake(caller):
    """When queries wait, the caller with the most stake goes first."""
    return caller.stake if caller else 0


if __name__ == "__main__":
    miner.serve(port=8091)
