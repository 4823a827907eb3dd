"""Random sequences of admit / reconcile / release / time passing, against an exact reference."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gigawatt.limits import Limiter, Reservation, Usage, open_store
from gigawatt.policy.model import CreditWeights, Peak, Rate, Window

from .policies import WEEK_S, make_policy
from .reference import Held, Reference, bucket_remaining, epoch

T0 = epoch(2026, 11, 30) + 4 * 3600  # a Monday, an hour before a 05:00 peak
_example = itertools.count()

EXACT_WEIGHTS = (CreditWeights(1, 5, 0, 1), CreditWeights(5, 25, 1, 6))
EXAMPLES = {"memory": 300, "sqlite": 60, "redis": 60}

usages = st.builds(
    Usage,
    st.integers(0, 3000),
    st.integers(0, 3000),
    st.integers(0, 5000),
    st.integers(0, 500),
)
ops = st.one_of(
    st.tuples(st.just("admit"), st.sampled_from("ab"), st.sampled_from(["small", "big"]), usages),
    st.tuples(st.just("reconcile"), st.integers(0, 50), usages),
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(
        st.just("advance"),
        st.one_of(
            st.sampled_from([0, 1, 30, 59, 60, 61, 599, 600, 3600, 5 * 3600, 86_400, WEEK_S]),
            st.integers(0, 4000),
        ),
    ),
)
windows = st.lists(
    st.sampled_from(
        [
            Window("session-10m", "session", 600, 20_000.0),
            Window("session-5h", "session", 5 * 3600, 60_000.0),
            Window("weekly", "weekly", WEEK_S, 150_000.0),
            Window("weekly-big", "weekly", WEEK_S, 40_000.0, models=("big",)),
            Window("rolling-1h", "rolling", 3600, 30_000.0),
        ]
    ),
    unique=True,
    max_size=3,
).map(tuple)
peaks = st.one_of(
    st.none(),
    st.just(Peak(5 * 3600, 11 * 3600, frozenset(range(5)), "UTC", 0.5)),
)
rates = st.builds(
    Rate,
    st.sampled_from([None, 1, 3, 7, 10, 60]),
    st.sampled_from([None, 500, 7000]),
    st.sampled_from([None, 300, 4000]),
)


@dataclass
class Case:
    rate: Rate
    windows: tuple[Window, ...]
    peak: Peak | None
    ttl_s: int
    ops: list[tuple[object, ...]]
    # Which of two limiters makes each call, when two share one store (as two processes do).
    via: list[int]


cases = st.builds(
    Case,
    rates,
    windows,
    peaks,
    st.sampled_from([30, 600]),
    st.lists(ops, max_size=40),
    st.lists(st.integers(0, 1), min_size=1, max_size=40),
)


def run_case(case: Case, store_url: str, limiters: int = 1) -> None:
    """Every call through one of `limiters` limiters, each with its own store on `store_url`."""
    policy = make_policy(
        rate=case.rate,
        windows=case.windows,
        peak=case.peak,
        ttl_s=case.ttl_s,
        weights=EXACT_WEIGHTS,
    )
    prefix = f"x{next(_example)}-"
    opened = [Limiter(policy, open_store(store_url)) for _ in range(limiters)]
    reference = Reference(policy, "pro", case.ttl_s)
    held: list[tuple[Reservation, int, Held]] = []
    now = T0
    try:
        for step, op in enumerate(case.ops):
            limiter = opened[case.via[step % len(case.via)] % limiters]
            if op[0] == "advance":
                now += op[1]  # type: ignore[operator]
            elif op[0] == "admit":
                _, account, model, usage = op
                decision = limiter.admit(prefix + account, "pro", model, usage, now)  # type: ignore[arg-type]
                ok, names, wait, rid = reference.admit(
                    prefix + account, model, usage, Fraction(now)
                )  # type: ignore[arg-type]
                assert decision.admitted == ok, (op, decision, names, wait)
                if ok:
                    assert decision.reservation is not None and rid is not None
                    held.append((decision.reservation, rid, reference.held[rid]))
                else:
                    assert decision.refused_by in names, (decision, names)
                    if wait is None:
                        assert decision.retry_after is None
                    else:
                        assert decision.retry_after == pytest.approx(float(wait), abs=1e-4)
            elif held:
                reservation, rid, ref_held = held[op[1] % len(held)]  # type: ignore[operator]
                if op[0] == "reconcile":
                    got = limiter.reconcile(reservation, op[2], now)  # type: ignore[arg-type]
                    want = reference.settle(rid, ref_held, op[2], Fraction(now))  # type: ignore[arg-type]
                else:
                    got = limiter.release(reservation, now)
                    want = reference.settle(rid, ref_held, None, Fraction(now))
                assert got == want, op
            for account in "ab":
                snapshot = limiter.snapshot(prefix + account, "pro", now)
                used = reference.window_used(prefix + account, Fraction(now))
                for status in snapshot:
                    if status.scope == "window":
                        assert status.used == pytest.approx(float(used[status.name]), abs=1e-6)
                    else:
                        assert status.model is not None
                        remaining = bucket_remaining(
                            reference, prefix + account, status.model, status.name, Fraction(now)
                        )
                        assert status.remaining == remaining, (op, status)
    finally:
        for limiter in opened:
            limiter.close()


def test_every_store_decides_like_the_reference(store_url: str) -> None:
    backend = store_url.split(":", 1)[0]

    @settings(
        max_examples=EXAMPLES.get(backend, 60),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(case=cases)
    def check(case: Case) -> None:
        run_case(case, store_url)

    check()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_processes_sharing_a_store_decide_like_the_reference(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two stores on one file or server, called in turn at random: neither may decide from a
    state the other has since changed (the SQLite store keeps the states it last wrote)."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=cases)
    def check(case: Case) -> None:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'state.db'}"
        else:
            url = str(request.getfixturevalue("redis_url"))
        run_case(case, url, limiters=2)

    check()
