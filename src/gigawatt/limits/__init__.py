"""The limiter: pure decisions over state kept in memory, SQLite or Redis."""

from gigawatt.limits.limiter import Limiter
from gigawatt.limits.storage import open_store
from gigawatt.limits.types import Decision, LimitStatus, Reservation
from gigawatt.limits.usage import Usage, credits_of

__all__ = [
    "Decision",
    "LimitStatus",
    "Limiter",
    "Reservation",
    "Usage",
    "credits_of",
    "open_store",
]
