"""The errors the SDK raises."""


class MeshmindError(Exception):
    """Anything the SDK refuses or a node refused."""


class KeyFileError(MeshmindError):
    """A key file that cannot be read or written: missing, readable by others, or malformed."""


class SignatureError(MeshmindError):
    """A signature that does not verify, or a malformed key or signature field."""


class VerificationError(MeshmindError):
    """A finalized snapshot or certificate that does not check out against the validator set."""


class ApiError(MeshmindError):
    """A node answered with an error: ``status`` (HTTP), ``code`` (``MALFORMED``, ``UNAVAILABLE``,
    ...) and ``message``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class TimeoutError(MeshmindError):  # noqa: A001 - the SDK's own, raised by waits
    """A wait (a transaction to be finalized, an epoch to pass) ran out of time."""
