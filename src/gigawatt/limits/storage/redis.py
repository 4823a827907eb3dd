"""`redis://host:port/db`: state shared by many gateway processes and machines.

Every admission is one `EVALSHA` of `lua/admit.lua` and every reconcile one of `reconcile.lua`:
one round trip each, atomic on the server. An account is one key, the hash `gw:{account}`
(buckets, windows, open reservations; layout in `lua/common.lua`). The braces make the account a
hash tag, so the scripts run unchanged on Redis Cluster (`redis+cluster://host:port`, any node as
the entry point), and any key an account may gain later lands in the same slot.

Time comes from the caller (`now`), not from the Redis server's clock, so the gateway and the
simulator drive the same scripts; gateway replicas must keep their clocks in sync (NTP), as a
difference between them moves windows by that much. Key expiry (server time) is only
housekeeping for idle accounts and is set well past the longest window.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any, NamedTuple, TypeVar

import redis
import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from gigawatt.errors import StateError, StateTimeout
from gigawatt.limits import engine
from gigawatt.limits.storage.base import AdmitRequest
from gigawatt.limits.storage.turns import TurnBatch
from gigawatt.limits.types import (
    AccountState,
    AdmitResult,
    BucketCharge,
    BucketSpec,
    LimitStatus,
    Reservation,
    ReservationRecord,
    WindowCharge,
    WindowSpec,
)

_MODES = {"session": "s", "anchored": "a", "rolling": "r"}
# A script call queued for the end of the event loop's turn: script, account, arguments.
_Call = tuple[str, str, list[str | int]]
_T = TypeVar("_T")


def load_script(name: str) -> str:
    """An operation's script, prefixed with the helpers every script shares."""
    lua = resources.files("gigawatt.limits") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


class Script(NamedTuple):
    source: str
    sha: str


def _script(source: str) -> Script:
    return Script(source, hashlib.sha1(source.encode()).hexdigest())


def account_key(account: str) -> str:
    # Braces inside the account name would change the hash tag; they cannot occur in a hash tag.
    safe = account.replace("{", "(").replace("}", ")")
    return f"gw:{{{safe}}}"


def _num(x: float) -> str:
    # repr() is the shortest exact form of a float, and Lua's tonumber reads it back exactly.
    return repr(float(x))


class RedisStore:
    def __init__(
        self,
        url: str,
        timeout_s: float = 2.0,
        key_ttl_s: int = 14 * 86_400,
        cluster: bool = False,
        **client: Any,
    ) -> None:
        options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, **client}
        self.client: redis.Redis | RedisCluster
        if cluster:
            # One retry at most: a cluster that cannot be reached must fail within the timeout.
            retry = Retry(NoBackoff(), retries=1)
            # A cluster client learns the slot map as it is made, so it can fail here already.
            self.client = self._call(lambda: RedisCluster.from_url(url, retry=retry, **options))
        else:
            self.client = redis.Redis.from_url(url, **options)
        self.key_ttl_s = key_ttl_s
        self._url, self._options, self._cluster = url, options, cluster
        self._aclient: Any = None  # made on first use, inside the event loop that uses it
        self._aclient_made: asyncio.Future[Any] | None = None
        self._turns: TurnBatch[_Call] = TurnBatch(self._run_turn)
        self._scripts = {
            name: _script(load_script(name)) for name in ("admit", "reconcile", "release")
        }

    def admit(self, account: str, request: AdmitRequest, now: float) -> AdmitResult:
        buckets, costs, windows, credits = request[:4]
        reply = self._eval("admit", account, admit_args(request, now, self.key_ttl_s))
        return decode_admit_reply(reply, buckets, costs, windows, credits, now)

    def reconcile(
        self,
        reservation: Reservation,
        actual_tokens: Sequence[int],
        actual_credits: float,
        windows_now: Mapping[str, WindowSpec],
        now: float,
    ) -> bool:
        args = reconcile_args(
            reservation, actual_tokens, actual_credits, windows_now, now, self.key_ttl_s
        )
        return bool(self._eval("reconcile", reservation.account, args))

    def release(self, reservation: Reservation, now: float) -> bool:
        return bool(self._eval("release", reservation.account, [_num(now), reservation.id]))

    def statuses(
        self,
        account: str,
        buckets: Sequence[BucketSpec],
        windows: Sequence[WindowSpec],
        now: float,
    ) -> tuple[LimitStatus, ...]:
        # Read only: expired reservations are released in this view, and for real by the next
        # script that runs for the account.
        fields = self._call(lambda: self.client.hgetall(account_key(account)))
        state = decode_hash(fields)
        engine.sweep(state, now)
        return engine.statuses(state, buckets, windows, now)

    def close(self) -> None:
        self.client.close()

    def _eval(self, name: str, account: str, args: list[str | int]) -> Any:
        """One EVALSHA: the script is sent (SCRIPT LOAD) only when the server does not know it."""
        script = self._scripts[name]
        key = account_key(account)
        # redis-py's Script object costs ~30 us a call over a bare EVALSHA; this is the same.
        try:
            return self._call(lambda: self.client.evalsha(script.sha, 1, key, *args))
        except StateError as exc:
            if not isinstance(exc.__cause__, redis.exceptions.NoScriptError):
                raise
        self._call(lambda: self.client.script_load(script.source))
        return self._call(lambda: self.client.evalsha(script.sha, 1, key, *args))

    # --- the same calls for an event loop (the gateway), on redis-py's asyncio client ---------

    async def aadmit(self, account: str, request: AdmitRequest, now: float) -> AdmitResult:
        buckets, costs, windows, credits = request[:4]
        args = admit_args(request, now, self.key_ttl_s)
        reply = await self._batched("admit", account, args)
        return decode_admit_reply(reply, buckets, costs, windows, credits, now)

    async def areconcile(
        self,
        reservation: Reservation,
        actual_tokens: Sequence[int],
        actual_credits: float,
        windows_now: Mapping[str, WindowSpec],
        now: float,
    ) -> bool:
        args = reconcile_args(
            reservation, actual_tokens, actual_credits, windows_now, now, self.key_ttl_s
        )
        return bool(await self._batched("reconcile", reservation.account, args))

    async def arelease(self, reservation: Reservation, now: float) -> bool:
        args: list[str | int] = [_num(now), reservation.id]
        return bool(await self._batched("release", reservation.account, args))

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        self._aclient_made = None

    async def _batched(self, name: str, account: str, args: list[str | int]) -> Any:
        return await self._turns.submit((name, account, args))

    async def _run_turn(self, calls: list[_Call]) -> list[Any]:
        """The calls a turn queues go to Redis together, in one pipeline: one write and one read
        on the socket, and each script still runs atomically on its own. On a cluster each
        call goes alone."""
        if len(calls) > 1 and not self._cluster:
            return await self._pipelined(calls)
        return await asyncio.gather(
            *(self._aeval(name, account, args) for name, account, args in calls),
            return_exceptions=True,
        )

    async def _pipelined(self, calls: list[_Call]) -> list[Any]:
        client = await self._client()
        pipe = client.pipeline(transaction=False)
        for name, account, args in calls:
            pipe.evalsha(self._scripts[name].sha, 1, account_key(account), *args)
        replies = await self._acall(pipe.execute(raise_on_error=False))
        outcomes: list[Any] = []
        for (name, account, args), reply in zip(calls, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                try:
                    reply = await self._aeval(name, account, args)  # loads the script
                except StateError as exc:
                    reply = exc
            elif isinstance(reply, Exception):
                reply = StateError(f"Redis failed: {reply}")
            outcomes.append(reply)
        return outcomes

    async def _client(self) -> Any:
        client = self._aclient
        if client is None:
            # One client for every call: calls made before the first answer wait for it.
            made = self._aclient_made
            if made is None:
                made = self._aclient_made = asyncio.ensure_future(self._make_aclient())
            try:
                client = await self._acall(asyncio.shield(made))
            except StateError:
                if self._aclient_made is made:
                    self._aclient_made = None  # the next call tries again
                raise
            self._aclient = client
        return client

    async def _aeval(self, name: str, account: str, args: list[str | int]) -> Any:
        client = await self._client()
        script = self._scripts[name]
        key = account_key(account)
        try:
            return await self._acall(client.evalsha(script.sha, 1, key, *args))
        except StateError as exc:
            if not isinstance(exc.__cause__, redis.exceptions.NoScriptError):
                raise
        await self._acall(client.script_load(script.source))
        return await self._acall(client.evalsha(script.sha, 1, key, *args))

    async def _make_aclient(self) -> Any:
        if not self._cluster:
            return redis.asyncio.Redis.from_url(self._url, **self._options)
        # As the sync cluster client: one retry at most, so an unreachable cluster fails within
        # the timeout; the slot map is learnt here, inside the event loop that will use it.
        retry = AsyncRetry(NoBackoff(), retries=1)
        client = AsyncRedisCluster.from_url(self._url, retry=retry, **self._options)
        await client.initialize()
        return client

    async def _acall(self, awaitable: Awaitable[_T]) -> _T:
        try:
            return await awaitable
        except (redis.exceptions.TimeoutError, TimeoutError) as exc:
            raise StateTimeout(f"Redis did not answer in time: {exc}") from exc
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise StateError(f"Redis failed: {exc}") from exc

    def _call(self, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except redis.exceptions.TimeoutError as exc:
            raise StateTimeout(f"Redis did not answer in time: {exc}") from exc
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise StateError(f"Redis failed: {exc}") from exc


def admit_args(request: AdmitRequest, now: float, ttl_s: int) -> list[str | int]:
    buckets, costs, windows, credits, rid, deadline = request
    return [
        _num(now),
        rid,
        _num(deadline),
        len(buckets),
        len(windows),
        _num(credits),
        ttl_s,
        *costs,
        *_limit_args(buckets, windows),
    ]


def _limit_args(
    buckets: tuple[BucketSpec, ...], windows: tuple[WindowSpec, ...]
) -> list[str | int]:
    """The admit script's arguments that describe the limits: the same for every request under
    one set of limits (until a peak or a week turns), so formatted once per set."""

    def format_them() -> list[str | int]:
        args: list[str | int] = []
        for spec in buckets:
            args += [spec.key, spec.limit, _num(spec.interval_s)]
        for w in windows:
            args += [
                w.key,
                _MODES[w.mode],
                _num(w.length_s),
                _num(w.limit),
                _num(w.start),
                _num(w.end),
                _num(w.relief_at),
                _num(w.relief_limit),
            ]
        return args

    return _formatted_once((buckets, windows), format_them)  # type: ignore[no-any-return]


def _formatted_once(specs: tuple[object, ...], format_them: Callable[[], _T]) -> _T:
    """`format_them()`, remembered for these very spec objects (the limits of a plan and model
    are the same objects until they change). The entry holds the objects, so their ids cannot
    be reused while it lives."""
    key = tuple(map(id, specs))
    known = _FORMATTED.get(key)
    if known is not None and known[0] == specs:
        return known[1]  # type: ignore[no-any-return]
    formatted = format_them()
    if len(_FORMATTED) >= 1024:
        _FORMATTED.clear()
    _FORMATTED[key] = (specs, formatted)
    return formatted


_FORMATTED: dict[tuple[int, ...], tuple[tuple[object, ...], object]] = {}


def decode_admit_reply(
    reply: list[Any],
    buckets: Sequence[BucketSpec],
    costs: Sequence[int],
    windows: Sequence[WindowSpec],
    credits: float,
    now: float,
) -> AdmitResult:
    admitted = int(reply[0]) == 1
    pos = 3 + len(buckets)
    tats = tuple(map(float, reply[3:pos]))
    usage = []
    window_charges = []
    for spec in windows:
        used, reset, period, end = reply[pos : pos + 4]
        usage.append((float(used), float(reset) if reset else None))
        if admitted:
            window_charges.append(
                WindowCharge(spec.key, spec.mode == "rolling", credits, float(period), float(end))
            )
        pos += 4
    raw = (tats, tuple(usage))
    if not admitted:
        refused = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        names = buckets if refused[0] == "b" else windows
        retry = float(reply[2]) if reply[2] else None
        return AdmitResult(False, (), (), names[int(refused[1:]) - 1].name, retry, raw)
    bucket_charges = tuple(
        BucketCharge(spec.key, spec.kind, cost, spec.interval_s)
        for spec, cost in zip(buckets, costs, strict=True)
    )
    return AdmitResult(True, bucket_charges, tuple(window_charges), None, None, raw)


def reconcile_args(
    reservation: Reservation,
    actual_tokens: Sequence[int],
    actual_credits: float,
    windows_now: Mapping[str, WindowSpec],
    now: float,
    ttl_s: int,
) -> list[str | int]:
    args: list[str | int] = [
        _num(now),
        reservation.id,
        _num(reservation.deadline),
        len(reservation.buckets),
        len(reservation.windows),
        _num(actual_credits),
        ttl_s,
    ]
    for charge, actual in zip(reservation.buckets, actual_tokens, strict=True):
        args += [charge.key, _num(charge.interval_s), charge.tokens, actual]
    credits, credits_s = None, ""
    for charge in reservation.windows:
        if charge.credits != credits:  # every window of a reservation holds the same credits
            credits, credits_s = charge.credits, _num(charge.credits)
        args += [
            charge.key,
            1 if charge.rolling else 0,
            credits_s,
            _num(charge.period),
            _num(charge.end),
        ]
        args += _window_now_args(windows_now.get(charge.key))
    return args


def _window_now_args(spec: WindowSpec | None) -> tuple[str, ...]:
    """How reconcile describes the window open now, formatted once per window spec."""
    if spec is None:
        return ("-", "0", "0", "0")
    return _formatted_once(
        (spec,), lambda: (_MODES[spec.mode], _num(spec.length_s), _num(spec.start), _num(spec.end))
    )


def decode_hash(fields: Mapping[bytes, bytes]) -> AccountState:
    """The `AccountState` an account's hash holds (see `lua/common.lua` for the layout)."""
    state = AccountState()
    for raw_field, raw_value in fields.items():
        field, value = raw_field.decode(), raw_value.decode()
        if field.startswith("b:"):
            state.tats[field] = float(value)
        elif field.startswith("r:"):
            state.reservations[field[2:]] = _decode_record(value)
        elif field.endswith(":s"):
            state.starts[field[:-2]] = float(value)
        elif field.endswith(":u"):
            state.used[field[:-2]] = float(value)
        elif field.endswith(":r"):
            state.slots[field[:-2]] = {
                int(float(i)): float(c)
                for i, c in (part.split("=") for part in value.split(";") if part)
            }
    return state


def _decode_record(value: str) -> ReservationRecord:
    deadline, bpart, wpart = value.split("|")
    buckets = []
    for item in filter(None, bpart.split(";")):
        key, tokens, interval = item.split(",")
        kind = key.rsplit(":", 1)[1]
        buckets.append(BucketCharge(key, kind, int(float(tokens)), float(interval)))  # type: ignore[arg-type]
    windows = []
    for item in filter(None, wpart.split(";")):
        key, rolling, credits, period, end = item.split(",")
        windows.append(WindowCharge(key, rolling == "1", float(credits), float(period), float(end)))
    return ReservationRecord(float(deadline), tuple(buckets), tuple(windows))
