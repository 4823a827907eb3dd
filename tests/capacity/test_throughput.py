"""The replica serving model: memory, prefill, decode, all-reduce, a workload's steady state.

Expected values are worked by hand with round efficiency factors (all 0.5), so each line of
arithmetic in the comments can be checked with a calculator.
"""

from __future__ import annotations

import pytest

from gigawatt.capacity.catalog import gpu_named, model_named
from gigawatt.capacity.throughput import (
    Efficiency,
    Replica,
    shipped_efficiency,
    steady_state,
    workload_throughput,
)
from gigawatt.errors import PlanError

HALF = Efficiency(prefill=0.5, decode=0.5, memory=0.5, link=0.5, fp4=0.5)


def replica(model: str, gpu: str, gpus: int = 1, precision: str = "fp8") -> Replica:
    return Replica(model_named(model), gpu_named(gpu), gpus, precision, HALF)


def test_weights_bytes_by_precision() -> None:
    assert replica("llama-3.1-8b", "h200").weights_bytes == 8_030_261_248
    # bf16: 2 bytes per weight.
    assert replica("llama-3.3-70b", "h200", 2, "bf16").weights_bytes == 2 * 70_553_706_496
    # NVFP4: 4 bits plus an 8-bit scale per 16 weights = 0.5625 bytes.
    assert replica("llama-3.1-405b", "b200", 8, "fp4").weights_bytes == pytest.approx(
        405_853_388_800 * 0.5625
    )


def test_kv_bytes_per_token() -> None:
    assert replica("llama-3.1-8b", "h200").kv_bytes_per_token == 65_536  # fp8: 1 byte a value
    assert replica("llama-3.1-8b", "h200", precision="bf16").kv_bytes_per_token == 131_072
    assert replica("llama-3.3-70b", "b200", precision="fp4").kv_bytes_per_token == 163_840


def test_max_batch() -> None:
    # 0.9 * (141e9 - 8,030,261,248) = 119,672,764,876.8 bytes of KV cache;
    # one 4,096-token sequence takes 65,536 * 4,096 = 268,435,456: 445.8 -> 445.
    assert replica("llama-3.1-8b", "h200").max_batch(4096) == 445
    # Eight H100s: 0.9 * (640e9 - 405,853,388,800) = 210,731,950,080 bytes;
    # 258,048 bytes a token * 2,000 tokens = 516,096,000 a sequence: 408.3 -> 408.
    assert replica("llama-3.1-405b", "h100", 8).max_batch(2000) == 408


def test_does_not_fit_says_what_would() -> None:
    small = replica("llama-3.1-405b", "h100")
    assert small.max_batch(100) == 0
    with pytest.raises(PlanError) as caught:
        workload_throughput(small, 1000, 1000)
    # 4 x 80 GB = 320 GB < 406 GB; 8 is the next count that divides the 128 heads.
    assert str(caught.value) == (
        "llama-3.1-405b at fp8 needs 406 GB of weights; 1 x h100-sxm has 80 GB; "
        "it fits on 8 or more"
    )


def test_weights_fit_but_no_sequence_does() -> None:
    # 70.55 GB of weights on one 80 GB H100 leave 0.9 * 9.446 = 8.5 GB of KV cache;
    # a 100,000-token sequence needs 163,840 * 100,000 = 16.4 GB.
    with pytest.raises(PlanError, match=r"less than one 100,000-token sequence needs \(16\.4 GB\)"):
        workload_throughput(replica("llama-3.3-70b", "h100"), 99_000, 1000)


def test_context_longer_than_the_model_takes() -> None:
    with pytest.raises(PlanError, match="llama-2-70b takes at most 4,096 tokens of context"):
        workload_throughput(replica("llama-2-70b", "h200", 2), 4000, 1000)


def test_precision_the_gpu_lacks() -> None:
    with pytest.raises(PlanError, match="h200 has no fp4"):
        replica("llama-3.1-8b", "h200", precision="fp4")


def test_prefill() -> None:
    r = replica("llama-3.1-8b", "h200")
    # Weights: 1,000 * 2 * 8,030,261,248 = 16,060,522,496,000 FLOPs; attention over half the
    # prompt: 1,000 * 4 * 32 * 32 * 128 * 500 = 262,144,000,000. At 0.5 * 1,978.9e12 FLOP/s:
    # 16,322,666,496,000 / 989.45e12 = 16.4967 ms.
    assert r.prefill_s(1000) == pytest.approx(16_322_666_496_000 / 989.45e12)
    assert r.prefill_s(0) == 0


def test_decode_step_adds_memory_and_compute() -> None:
    r = replica("llama-3.1-8b", "h200")
    # Memory: 8,030,261,248 + 10 * 1,000 * 65,536 = 8,685,621,248 bytes at 0.5 * 4.8e12 B/s
    # = 3.619009 ms.
    memory_s = 8_685_621_248 / 2.4e12
    assert r.decode_memory_s(10, 1000) == pytest.approx(memory_s)
    # Compute: 10 * (2 * 8,030,261,248 + 524,288,000) = 165,848,104,960 FLOPs at 989.45e12
    # = 0.167616 ms.
    compute_s = 165_848_104_960 / 989.45e12
    assert r.compute_s(10, 1000, HALF.decode) == pytest.approx(compute_s)
    assert r.decode_step_s(10, 1000) == pytest.approx(memory_s + compute_s)
    assert r.decode_step_s(0, 1000) == 0


def test_fp4_factor_applies_to_the_weights_products_only() -> None:
    r = replica("llama-3.3-70b", "b200", precision="fp4")
    # Weights at fp4: 2 * 70,553,706,496 FLOPs at 0.5 * 0.5 * 9,000e12; attention at fp8:
    # 4 * 80 * 64 * 128 * 100 = 262,144,000 FLOPs at 0.5 * 4,500e12.
    expected = 2 * 70_553_706_496 / 2250e12 + 262_144_000 / 2250e12
    assert r.compute_s(1, 100, 0.5) == pytest.approx(expected)


def test_allreduce() -> None:
    # Two all-reduces per layer of 16,384 bf16 values: 2 * 126 * 16,384 * 2 = 8,257,536 bytes a
    # token; a ring sends 2 * 7/8 of it, 14,450,688 bytes, at 0.5 * 900e9 / 2 B/s = 64.2253 us.
    assert replica("llama-3.1-405b", "h200", 8).allreduce_s(1) == pytest.approx(14_450_688 / 225e9)
    assert replica("llama-3.1-8b", "h200").allreduce_s(1000) == 0


def test_moe_decode_reads_only_touched_experts() -> None:
    r = replica("mixtral-8x7b", "h200")
    # One sequence at context 1: the 12,879,925,248 active weights plus 65,536 bytes of KV
    # at 2.4e12 B/s.
    assert r.decode_memory_s(1, 1) == pytest.approx((12_879_925_248 + 65_536) / 2.4e12)


def test_steady_state_formula() -> None:
    r = replica("llama-3.1-8b", "h200")
    state = steady_state(r, 1000, 500, 64)
    prefill_s = r.prefill_s(1000)
    step_s = r.decode_step_s(64, 1250)  # mean context: 1,000 + 500 / 2
    # Per 500 decode steps, 64 requests finish and 64 prompts are prefilled.
    cycle_s = 64 * prefill_s + 500 * step_s
    assert state.output_tokens_per_s == pytest.approx(64 * 500 / cycle_s)
    assert state.tpot_s == pytest.approx(cycle_s / 500)
    assert state.ttft_s == pytest.approx(prefill_s + step_s)
    assert state.batch == 64
    assert state.max_batch == r.max_batch(1500)


def test_throughput_grows_with_batch() -> None:
    r = replica("llama-3.3-70b", "h200", 2)
    rates = [steady_state(r, 2000, 200, b).output_tokens_per_s for b in range(1, 300, 7)]
    tpots = [steady_state(r, 2000, 200, b).tpot_s for b in range(1, 300, 7)]
    assert rates == sorted(rates) and tpots == sorted(tpots)


def test_no_target_uses_the_largest_batch() -> None:
    r = replica("llama-3.1-8b", "h200")
    best = workload_throughput(r, 1000, 1000)
    assert best.batch == best.max_batch == r.max_batch(2000) == 913


def test_latency_target_picks_the_largest_batch_that_meets_it() -> None:
    r = replica("llama-3.1-8b", "h200")
    result = workload_throughput(r, 1000, 1000, tpot_target_s=0.02)
    assert result.tpot_s <= 0.02
    assert steady_state(r, 1000, 1000, result.batch + 1).tpot_s > 0.02
    assert result.output_tokens_per_s < workload_throughput(r, 1000, 1000).output_tokens_per_s


def test_unreachable_latency_target() -> None:
    r = replica("llama-3.1-405b", "h100", 8)
    with pytest.raises(PlanError, match=r"cannot serve llama-3\.1-405b at 1\.0 ms per output"):
        workload_throughput(r, 1000, 1000, tpot_target_s=0.001)


def test_bad_workloads() -> None:
    r = replica("llama-3.1-8b", "h200")
    with pytest.raises(PlanError, match="at least 1 output token"):
        workload_throughput(r, 100, 0)
    with pytest.raises(PlanError, match="1 or more"):
        Replica(model_named("llama-3.1-8b"), gpu_named("h200"), 0, "fp8", HALF)
    with pytest.raises(PlanError, match="efficiency memory must be positive"):
        Efficiency(prefill=0.5, decode=0.5, memory=0, link=0.5, fp4=0.5)


def test_shipped_efficiency_is_the_default() -> None:
    r = Replica(model_named("llama-3.1-8b"), gpu_named("h200"), 1, "fp8")
    assert r.efficiency == shipped_efficiency()
    for value in (r.efficiency.prefill, r.efficiency.decode, r.efficiency.memory):
        assert 0 < value <= 1  # shares of a datasheet peak
