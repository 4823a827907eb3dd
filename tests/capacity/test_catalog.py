"""The GPU and model catalogs: shipped numbers, derived quantities, user entries and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigawatt.capacity.catalog import gpu_named, load_gpus, load_models, model_named
from gigawatt.errors import PlanError, PolicyError


def llama_params(vocab: int, hidden: int, intermediate: int, layers: int, heads: int) -> int:
    """Parameters of a Llama from its config.json: untied embeddings and head, 8 KV heads of 128."""
    attention = hidden * heads * 128 + 2 * hidden * 8 * 128 + heads * 128 * hidden
    layer = attention + 3 * hidden * intermediate + 2 * hidden
    return 2 * vocab * hidden + layers * layer + hidden


@pytest.mark.parametrize(
    ("name", "vocab", "hidden", "intermediate", "layers", "heads"),
    [
        ("llama-2-70b", 32_000, 8192, 28_672, 80, 64),
        ("llama-3.1-8b", 128_256, 4096, 14_336, 32, 32),
        ("llama-3.3-70b", 128_256, 8192, 28_672, 80, 64),
        ("llama-3.1-405b", 128_256, 16_384, 53_248, 126, 128),
    ],
)
def test_llama_params_match_their_configs(
    name: str, vocab: int, hidden: int, intermediate: int, layers: int, heads: int
) -> None:
    model = model_named(name)
    assert (
        model.params
        == model.active_params
        == llama_params(vocab, hidden, intermediate, layers, heads)
    )
    assert (model.hidden_size, model.layers, model.heads, model.kv_heads) == (
        hidden,
        layers,
        heads,
        8,
    )


def test_every_entry_names_its_source() -> None:
    for entry in [*load_gpus().values(), *load_models().values()]:
        assert entry.source


def test_shipped_models() -> None:
    assert set(load_models()) == {
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.3-70b",
        "llama-3.1-405b",
        "mixtral-8x7b",
        "deepseek-v3",
    }


def test_h200_numbers_in_si_units() -> None:
    h200 = gpu_named("H200")
    assert h200.hbm_bytes == 141e9
    assert h200.hbm_bytes_per_s == 4.8e12
    assert h200.peak_flops("fp8") == pytest.approx(1978.9e12)
    assert h200.peak_flops("bf16") == pytest.approx(989.4e12)
    assert h200.board_watts == 700


def test_a_precision_the_gpu_lacks() -> None:
    with pytest.raises(PlanError, match="h200 has no fp4 arithmetic; it supports bf16, fp8"):
        gpu_named("h200").peak_flops("fp4")
    assert gpu_named("b200").peak_flops("fp4") == 9000e12


def test_alias() -> None:
    assert gpu_named("h100").name == "h100-sxm"


def test_kv_values_per_token() -> None:
    # Keys and values: 2 * layers * kv_heads * head_dim.
    assert model_named("llama-3.1-8b").kv_values_per_token == 2 * 32 * 8 * 128 == 65_536
    assert model_named("llama-3.1-405b").kv_values_per_token == 2 * 126 * 8 * 128 == 258_048
    # Latent attention: one 512 + 64 latent per layer.
    assert model_named("deepseek-v3").kv_values_per_token == 61 * 576 == 35_136


def test_mixtral_experts() -> None:
    mixtral = model_named("mixtral-8x7b")
    # (46,702,792,704 - 12,879,925,248) / (8 - 2) = 5,637,144,576 = 32 layers * 3 * 4096 * 14336.
    assert mixtral.expert_params == 5_637_144_576 == 32 * 3 * 4096 * 14336
    assert mixtral.params_read(1) == pytest.approx(12_879_925_248)
    # Two tokens: shared 12,879,925,248 - 2 * 5,637,144,576 = 1,605,636,096, plus
    # 8 * (1 - (6/8)^2) = 3.5 experts: 1,605,636,096 + 3.5 * 5,637,144,576 = 21,335,642,112.
    assert mixtral.params_read(2) == pytest.approx(21_335_642_112)
    assert mixtral.params_read(256) == pytest.approx(mixtral.params)


def test_deepseek_reads_a_fraction_of_its_experts_at_small_batch() -> None:
    deepseek = model_named("deepseek-v3")
    # 256 experts, 8 per token: 64 tokens touch 256 * (1 - (248/256)^64)
    # = 256 * (1 - 0.1311) = 222.4 of them.
    shared = deepseek.active_params - 8 * deepseek.expert_params
    touched = 256 * (1 - (248 / 256) ** 64)
    assert touched == pytest.approx(222.4, abs=0.05)
    assert deepseek.params_read(64) == pytest.approx(shared + touched * deepseek.expert_params)
    assert deepseek.params_read(64) < deepseek.params


def test_dense_model_reads_every_weight() -> None:
    model = model_named("llama-3.1-8b")
    assert model.params_read(1) == model.params_read(1000) == model.params


def test_attention_flops() -> None:
    # 4 * 32 layers * 32 heads * 128 * 1,000 tokens.
    assert model_named("llama-3.1-8b").attention_flops_per_token(1000) == 524_288_000


def test_unknown_names_get_a_hint() -> None:
    with pytest.raises(PlanError, match=r"unknown GPU 'h20' .*did you mean 'h200'"):
        gpu_named("h20")
    with pytest.raises(PlanError, match=r"did you mean 'llama-3\.1-405b'"):
        model_named("lama-3.1-405b")


def test_user_catalog_adds_entries(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        """
[gpus.tiny]
hbm_gb = 24
hbm_tb_per_s = 1.0
bf16_tflops = 100
board_watts = 300
source = "made up for a test"

[models."tiny-1b"]
params = 1_000_000_000
layers = 16
hidden_size = 2048
heads = 16
head_dim = 128
max_context = 8192
source = "made up for a test"
"""
    )
    gpu = gpu_named("tiny", path)
    assert gpu.hbm_bytes == 24e9 and gpu.precisions == ("bf16",)
    assert gpu.link_bytes_per_s == 900e9  # the default
    model = model_named("tiny-1b", path)
    assert model.active_params == model.params and model.kv_heads == 16
    assert "h200" in load_gpus(path)  # the shipped ones stay


def test_bad_user_catalog_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[gpus.broken]
hbm_gb = -1
hbm_tb_per_s = 1.0
board_watt = 300

[models.llama-9.9-1b]
params = 1
"""
    )
    with pytest.raises(PolicyError) as caught:
        load_gpus(path)
    problems = [str(p) for p in caught.value.problems]
    assert "gpus.broken.hbm_gb: must be positive, not -1" in problems
    assert "gpus.broken.board_watt: unknown key; did you mean 'board_watts'?" in problems
    assert "gpus.broken.board_watts: required" in problems
    assert "gpus.broken.source: required: say where the numbers come from" in problems
    # Unquoted, "llama-9.9-1b" is the table "llama-9" holding a table "9-1b".
    assert (
        'models.llama-9.9-1b: a name with dots must be quoted: [models."llama-9.9-1b"]' in problems
    )
