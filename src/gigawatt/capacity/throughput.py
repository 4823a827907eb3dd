"""The serving model of a tensor-parallel replica: memory, prefill, decode, a workload's tokens/s.

A replica is `gpus` GPUs of one kind holding one copy of a model's weights at one precision. Its
HBM holds the weights, and a fraction of what is left holds the KV cache; that fixes the largest
batch. Prefill is compute-bound. A decode step reads the weights (a mixture of experts only the
experts its batch touches) plus every sequence's KV cache, and computes one token per sequence.
Its time is the memory time plus the compute time: the measurements reject the roofline's
max(memory, compute) in favour of the sum (docs/capacity.md shows both fits). Splitting a model
over several GPUs adds two all-reduces of the activations per layer. Efficiency factors (fitted by
`gigawatt plan fit` on measured serving throughput, see `fit.py`) say how much of the datasheet
peaks each part reaches.

The formulas, with a worked example, are in docs/capacity.md; `Replica.prefill_s`,
`Replica.decode_step_s` and `workload_throughput` are the one model that both the planner and the
simulator use.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import tomllib
from dataclasses import dataclass, field, fields

from gigawatt.capacity.catalog import Gpu, ModelArch
from gigawatt.errors import PlanError

# Bytes a weight takes at each precision. FP4 (NVFP4) stores 4 bits plus one 8-bit scale per block
# of 16 values: 4.5 bits.
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5625}
# Bytes per cached key or value: FP8 and FP4 deployments keep the KV cache in FP8.
KV_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 1.0}
# Attention multiplies activations by the cached keys and values, so it runs at the KV precision.
ATTENTION_PRECISION = {"bf16": "bf16", "fp8": "fp8", "fp4": "fp8"}
# Activations cross the tensor-parallel all-reduce in BF16.
ACTIVATION_BYTES = 2.0
# Share of the HBM left after the weights that holds the KV cache; the rest is activations and
# runtime workspace (TensorRT-LLM's default kv_cache_free_gpu_mem_fraction, vLLM's 0.9 likewise).
KV_MEMORY_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Shares of the datasheet peaks reached in serving; fitted by `fit.py`.

    prefill: of peak FLOP/s while prefilling prompts; decode: of peak FLOP/s in a decode step;
    memory: of HBM bandwidth in a decode step; link: of the scale-up link bandwidth in the
    tensor-parallel all-reduces; fp4: how much of the fp8 shares (prefill, decode) the weights'
    matrix products reach at fp4 (attention stays at fp8, the KV cache's precision).
    """

    prefill: float
    decode: float
    memory: float
    link: float
    fp4: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value <= 0:
                raise PlanError(f"efficiency {f.name} must be positive, not {value!r}")


@functools.cache
def shipped_efficiency() -> Efficiency:
    """The factors `gigawatt plan fit` wrote to capacity/data/efficiency.toml."""
    path = importlib.resources.files("gigawatt.capacity") / "data" / "efficiency.toml"
    raw = tomllib.loads(path.read_text("utf-8"))
    return Efficiency(**{f.name: float(raw["efficiency"][f.name]) for f in fields(Efficiency)})


@dataclass(frozen=True, slots=True)
class Replica:
    """`gpus` GPUs of kind `gpu` serving one copy of `arch` at `precision`, tensor-parallel."""

    arch: ModelArch
    gpu: Gpu
    gpus: int
    precision: str
    efficiency: Efficiency = field(default_factory=shipped_efficiency)

    def __post_init__(self) -> None:
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 1:
            raise PlanError(f"a replica needs a whole number of GPUs, 1 or more, not {self.gpus!r}")
        if self.precision not in WEIGHT_BYTES:
            raise PlanError(
                f"unknown precision {self.precision!r}; use one of {', '.join(WEIGHT_BYTES)}"
            )
        self.gpu.peak_flops(self.precision)  # raises when the GPU lacks the precision

    @property
    def weights_bytes(self) -> float:
        """All weights at the replica's precision: Llama-3.1-8B at fp8 is 8.03e9 bytes."""
        return self.arch.params * WEIGHT_BYTES[self.precision]

    @property
    def kv_bytes_per_token(self) -> float:
        """KV cache per token of context: Llama-3.1-8B at fp8 is 65,536 bytes (64 KiB)."""
        return self.arch.kv_values_per_token * KV_BYTES[self.precision]

    @property
    def hbm_bytes(self) -> float:
        return self.gpus * self.gpu.hbm_bytes

    @property
    def kv_capacity_bytes(self) -> float:
        """HBM for the KV cache: 0.9 of what the weights leave (0 when they do not fit)."""
        return max(0.0, KV_MEMORY_FRACTION * (self.hbm_bytes - self.weights_bytes))

    @property
    def flops_per_s(self) -> float:
        return self.gpus * self.gpu.peak_flops(self.precision)

    @property
    def attention_flops_per_s(self) -> float:
        return self.gpus * self.gpu.peak_flops(ATTENTION_PRECISION[self.precision])

    def compute_s(self, tokens: float, context_tokens: float, efficiency: float) -> float:
        """Seconds of arithmetic for `tokens` tokens each attending to `context_tokens` tokens.

        2 * active_params FLOPs per token at the weights' precision (times the fp4 factor there),
        plus the attention FLOPs at the KV cache's precision, both at `efficiency` of the peak.
        """
        weights_efficiency = efficiency * (self.efficiency.fp4 if self.precision == "fp4" else 1.0)
        weights_s = tokens * 2.0 * self.arch.active_params / (self.flops_per_s * weights_efficiency)
        attention_flops = tokens * self.arch.attention_flops_per_token(context_tokens)
        return weights_s + attention_flops / (self.attention_flops_per_s * efficiency)

    def max_batch(self, context_tokens: int) -> int:
        """The most sequences of `context_tokens` tokens whose KV cache fits; 0 if none does.

        Llama-3.1-8B at fp8 on one H200, 4,096-token sequences: 0.9 * (141e9 - 8.03e9) bytes /
        (65,536 * 4,096 bytes) = 445 sequences.
        """
        if context_tokens < 1:
            raise PlanError(f"context must be at least 1 token, not {context_tokens}")
        return math.floor(self.kv_capacity_bytes / (self.kv_bytes_per_token * context_tokens))

    def allreduce_s(self, tokens: float) -> float:
        """Time of the tensor-parallel all-reduces for `tokens` tokens in one forward pass.

        Two all-reduces per layer (after attention and after the MLP), each of hidden_size BF16
        activations per token; a ring all-reduce sends 2 * (n - 1) / n of the data through each
        GPU's link, half of whose listed bandwidth goes each way. Zero on one GPU.
        """
        if self.gpus == 1:
            return 0.0
        data_bytes = 2 * self.arch.layers * self.arch.hidden_size * ACTIVATION_BYTES * tokens
        sent_bytes = data_bytes * 2 * (self.gpus - 1) / self.gpus
        return sent_bytes / (self.gpu.link_bytes_per_s / 2 * self.efficiency.link)

    def prefill_s(self, prompt_tokens: int) -> float:
        """Seconds to prefill one prompt: its FLOPs at the prefill share of peak, plus all-reduces.

        Causal attention lets a prompt's tokens see, on average, half of it.
        """
        if prompt_tokens <= 0:
            return 0.0
        compute_s = self.compute_s(prompt_tokens, prompt_tokens / 2, self.efficiency.prefill)
        return compute_s + self.allreduce_s(prompt_tokens)

    def decode_memory_s(self, batch: int, context_tokens: float) -> float:
        """Seconds a decode step spends reading HBM: the weights `batch` tokens touch plus `batch`
        KV caches of `context_tokens` tokens, at the memory share of the bandwidth."""
        read_bytes = (
            self.arch.params_read(batch) * WEIGHT_BYTES[self.precision]
            + batch * context_tokens * self.kv_bytes_per_token
        )
        return read_bytes / (self.gpus * self.gpu.hbm_bytes_per_s * self.efficiency.memory)

    def decode_step_s(self, batch: int, context_tokens: float) -> float:
        """Seconds of one decode step producing one token for each of `batch` sequences.

        Memory time plus compute time (one token per sequence, attending to `context_tokens`
        tokens, at the decode share of peak) plus the all-reduces of `batch` tokens.
        """
        if batch <= 0:
            return 0.0
        return (
            self.decode_memory_s(batch, context_tokens)
            + self.compute_s(batch, context_tokens, self.efficiency.decode)
            + self.allreduce_s(batch)
        )


@dataclass(frozen=True, slots=True)
class Throughput:
    """A replica's steady state on one workload at batch `batch` (at most `max_batch`)."""

    output_tokens_per_s: float
    max_batch: int
    batch: int
    ttft_s: float
    tpot_s: float


def steady_state(replica: Replica, input_tokens: int, output_tokens: int, batch: int) -> Throughput:
    """The steady state of continuous batching with `batch` sequences always in flight.

    Each finished request is replaced by a new one, whose prefill stalls the batch; over the
    `output_tokens` decode steps of one sequence, `batch` requests finish, so one such cycle takes
    batch * prefill_s(input) + output * decode_step_s(batch, input + output / 2) (the mean
    context over a sequence's life) and yields batch * output tokens:

        output_tokens_per_s = B * O / (B * prefill_s(I) + O * decode_step_s(B, I + O / 2))
        tpot_s = (O * decode_step_s + B * prefill_s(I)) / O
        ttft_s = prefill_s(I) + decode_step_s  (a new prompt waits for the step in progress)
    """
    prefill_s = replica.prefill_s(input_tokens)
    step_s = replica.decode_step_s(batch, input_tokens + output_tokens / 2)
    cycle_s = batch * prefill_s + output_tokens * step_s
    return Throughput(
        output_tokens_per_s=batch * output_tokens / cycle_s,
        max_batch=replica.max_batch(input_tokens + output_tokens),
        batch=batch,
        ttft_s=prefill_s + step_s,
        tpot_s=cycle_s / output_tokens,
    )


def workload_throughput(
    replica: Replica,
    input_tokens: int,
    output_tokens: int,
    tpot_target_s: float | None = None,
) -> Throughput:
    """The best output tokens/s of `replica` on requests of `input_tokens` in, `output_tokens` out.

    Without a target, at the largest batch whose KV cache fits; with one, at the largest batch
    whose time per output token stays within `tpot_target_s` (both throughput and time per token
    grow with the batch). PlanError, saying what would work, when no batch fits or meets the target.
    """
    if input_tokens < 0 or output_tokens < 1:
        raise PlanError(
            f"a workload needs at least 1 output token and no negative input, "
            f"not {input_tokens} in, {output_tokens} out"
        )
    context = input_tokens + output_tokens
    if context > replica.arch.max_context:
        raise PlanError(
            f"{replica.arch.name} takes at most {replica.arch.max_context:,} tokens of context; "
            f"{input_tokens:,} in + {output_tokens:,} out is {context:,}"
        )
    max_batch = replica.max_batch(context)
    if max_batch < 1:
        raise PlanError(does_not_fit(replica, context))
    best = steady_state(replica, input_tokens, output_tokens, max_batch)
    if tpot_target_s is None or best.tpot_s <= tpot_target_s:
        return best
    if tpot_target_s <= 0:
        raise PlanError(f"the time-per-token target must be positive, not {tpot_target_s}")
    if steady_state(replica, input_tokens, output_tokens, 1).tpot_s > tpot_target_s:
        fastest = steady_state(replica, input_tokens, output_tokens, 1).tpot_s
        raise PlanError(
            f"{replica.gpus} x {replica.gpu.name} cannot serve {replica.arch.name} at "
            f"{tpot_target_s * 1e3:.1f} ms per output token even one request at a time "
            f"(it takes {fastest * 1e3:.1f} ms); raise the target or add GPUs"
        )
    low, high = 1, max_batch  # tpot(low) meets the target, tpot(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if steady_state(replica, input_tokens, output_tokens, middle).tpot_s <= tpot_target_s:
            low = middle
        else:
            high = middle
    return steady_state(replica, input_tokens, output_tokens, low)


def does_not_fit(replica: Replica, context_tokens: int) -> str:
    """Why no `context_tokens`-token sequence fits `replica`, and the GPU count that would do.

    Suggested counts divide the attention heads, as a tensor-parallel split must.
    """
    gpu, arch = replica.gpu, replica.arch
    need = replica.weights_bytes
    have = f"{replica.gpus} x {gpu.name} has {replica.hbm_bytes / 1e9:,.0f} GB"
    if need >= replica.hbm_bytes:
        problem = (
            f"{arch.name} at {replica.precision} needs {need / 1e9:,.0f} GB of weights; {have}"
        )
    else:
        sequence_gb = replica.kv_bytes_per_token * context_tokens / 1e9
        problem = (
            f"{arch.name} at {replica.precision} on {replica.gpus} x {gpu.name}: "
            f"{need / 1e9:,.0f} GB of weights leave {replica.kv_capacity_bytes / 1e9:,.1f} GB of "
            f"KV cache, less than one {context_tokens:,}-token sequence needs "
            f"({sequence_gb:,.1f} GB)"
        )
    for gpus in range(replica.gpus + 1, arch.heads + 1):
        if arch.heads % gpus:
            continue
        bigger = Replica(arch, gpu, gpus, replica.precision, replica.efficiency)
        if bigger.max_batch(context_tokens) >= 1:
            return f"{problem}; it fits on {gpus} or more"
    return f"{problem}; it does not fit on up to {arch.heads} of them (one per attention head)"
