"""What every key store shares: the record, the interface, and how secrets become digests."""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Protocol

SECRET_PREFIX = "gw-"
# token_urlsafe(32): 32 random bytes as unpadded url-safe base64, always 43 characters.
_SECRET = re.compile(r"gw-[A-Za-z0-9_-]{43}")
# Creation retries a key id this many times when it is taken: with 32 random bits a clash is
# rare until millions of keys, and five clashes in a row means something else is wrong.
ID_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as the gateway knows it. Holds neither the secret nor its digest, so a record
    is safe to print, log and return from an admin API."""

    key_id: str
    account: str
    plan: str
    created_at: float
    revoked_at: float | None = None
    label: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, object]:
        """The record as plain JSON values (never a secret: the record holds none)."""
        return {
            "key_id": self.key_id,
            "account": self.account,
            "plan": self.plan,
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class KeyStore(Protocol):
    """API keys, kept as SHA-256 digests. Raises `StateError` when the store fails, `ValueError`
    for an empty account or plan name and for a key id it does not know."""

    def create(self, account: str, plan: str, now: float, label: str = "") -> tuple[KeyRecord, str]:
        """A new key for `account` on `plan`: its record and its secret, which is not kept."""
        ...

    def authenticate(self, secret: str) -> KeyRecord | None:
        """The record of an active key with this secret; None for any other string."""
        ...

    def list(self, account: str | None = None) -> builtins.list[KeyRecord]:
        """Every key (of `account`, when given), revoked ones too, oldest first."""
        ...

    def revoke(self, key_id: str, now: float) -> bool:
        """Revoke a key for good; False when it already was."""
        ...

    def set_plan(self, account: str, plan: str) -> int:
        """Move every key of `account` to `plan`; return how many keys it has."""
        ...

    def close(self) -> None: ...


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(4)


def digest_of(secret: str) -> str:
    """The SHA-256 hex digest stored in place of a secret.

    No salt and no slow hash: a secret is 256 random bits, so there is no dictionary to guess
    from and a salt would only cost the one-lookup authentication (docs/keys.md)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(secret: str) -> bool:
    # The format is public, so refusing other strings early tells an attacker nothing, and it
    # spares the store a lookup for every malformed header.
    return isinstance(secret, str) and _SECRET.fullmatch(secret) is not None


def check_name(kind: str, name: str) -> None:
    """Account and plan names: non-empty, printable, without surrounding spaces."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} name must not be empty")
    if name != name.strip() or not name.isprintable():
        raise ValueError(f"{kind} name {name!r} has surrounding spaces or unprintable characters")


def sort_records(records: builtins.list[KeyRecord]) -> builtins.list[KeyRecord]:
    return sorted(records, key=lambda r: (r.created_at, r.key_id))
