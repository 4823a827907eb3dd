"""The fleet file: loading, checking, scaling and adding GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigawatt.capacity.fleet import Fleet, load_fleet
from gigawatt.errors import PlanError, PolicyError

EXAMPLE = Path(__file__).parents[2] / "examples" / "fleet.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


TWO_POOLS = """
name = "two"

[[pools]]
model = "small"
arch = "llama-3.1-8b"
gpu = "h100"
precision = "fp8"
gpus_per_replica = 1
gpus = 100

[[pools]]
model = "large"
arch = "llama-3.1-405b"
gpu = "h200"
precision = "fp8"
gpus_per_replica = 8
replicas = 40
"""


@pytest.fixture
def two(tmp_path: Path) -> Fleet:
    return load_fleet(write(tmp_path, TWO_POOLS))


def test_load(two: Fleet) -> None:
    assert two.name == "two"
    small, large = two.pools
    assert (small.model, small.replica.gpu.name, small.replicas, small.gpus) == (
        "small",
        "h100-sxm",
        100,
        100,
    )
    assert (large.replicas, large.gpus, large.replica.gpus) == (40, 320, 8)
    assert two.gpus == 420
    assert two.models == ("small", "large")
    assert two.pools_for("large") == (large,)
    assert two.pools_for("medium") == ()


def test_example_fleet_loads() -> None:
    fleet = load_fleet(EXAMPLE)
    assert fleet.models == ("small", "medium", "large")
    for pool in fleet.pools:
        assert pool.replicas > 0 and pool.replica.max_batch(4096) > 0


def test_scaled(two: Fleet) -> None:
    # 100 * 0.013 = 1.3 -> 1; 40 * 0.013 = 0.52 -> 1; at 0.001 both round to 0 but keep 1.
    assert [p.replicas for p in two.scaled(0.013).pools] == [1, 1]
    assert [p.replicas for p in two.scaled(0.001).pools] == [1, 1]
    assert [p.replicas for p in two.scaled(0.5).pools] == [50, 20]
    with pytest.raises(PlanError, match="positive fraction"):
        two.scaled(0)


def test_with_added_gpus_splits_in_proportion(two: Fleet) -> None:
    # 100 + 320 = 420 GPUs now. 1,000 new B200s: 1,000 * 100/420 = 238.1 for small (238
    # replicas of 1), 1,000 * 320/420 = 761.9 for large (95.24 replicas of 8 -> 95 = 760 GPUs).
    # 2 GPUs are left: large has the larger remainder (0.24 against 0.1) but needs 8; small
    # takes one more replica (239), and 1 GPU stays unused.
    grown = two.with_added_gpus("b200", 1000)
    added = grown.pools[2:]
    assert [(p.model, p.replica.gpu.name, p.replicas) for p in added] == [
        ("small", "b200", 239),
        ("large", "b200", 95),
    ]
    assert grown.gpus == 420 + 239 + 760
    assert grown.pools[:2] == two.pools


def test_added_gpus_of_a_kind_already_there_join_its_pool(two: Fleet) -> None:
    # 420 H200s: 100 for small (as H200 replicas, a new pool), 320 = 40 replicas for large.
    grown = two.with_added_gpus("h200", 420)
    assert [(p.model, p.replica.gpu.name, p.replicas) for p in grown.pools] == [
        ("small", "h100-sxm", 100),
        ("large", "h200", 80),
        ("small", "h200", 100),
    ]


def test_added_gpus_that_cannot_hold_a_replica(tmp_path: Path) -> None:
    fleet = load_fleet(
        write(
            tmp_path,
            """
[[pools]]
model = "medium"
arch = "llama-3.3-70b"
gpu = "b200"
precision = "fp4"
gpus_per_replica = 1
gpus = 10
""",
        )
    )
    assert fleet.name == "fleet"  # the file's stem
    with pytest.raises(PlanError, match="h100-sxm has no fp4"):
        fleet.with_added_gpus("h100", 100)


def test_every_problem_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
size = 3

[[pools]]
model = "small"
arch = "llama-3.1-8b"
gpu = "h20"
precision = "fp8"
gpus_per_replica = 1
gpus = 10

[[pools]]
model = "large"
arch = "llama-3.1-405b"
gpu = "h100"
precision = "fp8"
gpus_per_replica = 8
gpus = 1001

[[pools]]
model = "large"
arch = "llama-3.1-405b"
gpu = "h100"
precision = "fp8"
gpus_per_replica = 4
replicas = 3

[[pools]]
model = "medium"
arch = "llama-3.3-70b"
gpu = "h200"
precision = "fp16"
gpus_per_replica = 1
gpus = 4
replicas = 4
""",
    )
    with pytest.raises(PolicyError) as caught:
        load_fleet(path)
    problems = [str(p) for p in caught.value.problems]
    assert problems[0] == "size: unknown key"
    assert problems[1].startswith("pools[0].gpu: unknown GPU 'h20'")
    assert problems[1].endswith("did you mean 'h200'?")
    assert problems[2] == (
        "pools[1].gpus: 1,001 is not a multiple of gpus_per_replica = 8; use 1_000 or 1_008"
    )
    assert problems[3] == (
        "pools[2].gpus_per_replica: llama-3.1-405b at fp8 needs 406 GB of weights; "
        "4 x h100-sxm has 320 GB; it fits on 8 or more"
    )
    assert problems[4] == "pools[3]: give either gpus or replicas, not both or neither"
    assert len(problems) == 5


def test_missing_pools_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="pools: required"):
        load_fleet(write(tmp_path, 'name = "empty"\n'))
    with pytest.raises(PolicyError, match="cannot read"):
        load_fleet(tmp_path / "missing.toml")


def test_catalog_relative_to_the_fleet_file(tmp_path: Path) -> None:
    (tmp_path / "extra.toml").write_text(
        """
[gpus.big]
hbm_gb = 1000
hbm_tb_per_s = 10
fp8_tflops = 5000
board_watts = 1500
source = "a test"
"""
    )
    fleet = load_fleet(
        write(
            tmp_path,
            """
catalog = "extra.toml"

[[pools]]
model = "large"
arch = "llama-3.1-405b"
gpu = "big"
precision = "fp8"
gpus_per_replica = 1
replicas = 2
""",
        )
    )
    assert fleet.pools[0].replica.gpu.name == "big" and fleet.gpus == 2


def test_a_latency_target_caps_the_batch(tmp_path: Path) -> None:
    fleet = load_fleet(
        write(tmp_path, TWO_POOLS.replace("replicas = 40", "replicas = 40\ntpot_ms = 50"))
    )
    small, large = fleet.pools
    assert small.tpot_target_s is None and large.tpot_target_s == 0.05
    free = large.replica
    unbounded = small.throughput(1000, 1000)
    assert unbounded.batch == unbounded.max_batch  # no target: the largest batch that fits
    held = large.throughput(1000, 1000)
    assert held.tpot_s <= 0.05
    assert held.batch < held.max_batch
    # The target costs throughput: the largest batch serves more tokens/s, more slowly.
    from gigawatt.capacity.throughput import workload_throughput

    at_max = workload_throughput(free, 1000, 1000)
    assert at_max.output_tokens_per_s > held.output_tokens_per_s
    assert at_max.tpot_s > 0.05
    # New GPUs keep the pool's target.
    grown = fleet.with_added_gpus("b200", 800)
    assert {p.tpot_target_s for p in grown.pools if p.model == "large"} == {0.05}


@pytest.mark.parametrize("bad", ["0", "-5", "true", '"50ms"'])
def test_a_bad_latency_target_is_named(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, TWO_POOLS.replace("replicas = 40", f"replicas = 40\ntpot_ms = {bad}"))
    with pytest.raises(PolicyError) as info:
        load_fleet(path)
    assert any(p.path == "pools[1].tpot_ms" for p in info.value.problems)


def test_removing_gpus_takes_whole_replicas_in_proportion(two: Fleet) -> None:
    # 320 H200s in 40 replicas of 8; removing 100 takes ceil(100 / 8) = 13 replicas.
    less = two.with_removed_gpus("h200", 100)
    assert [p.replicas for p in less.pools] == [100, 27]
    assert two.with_removed_gpus("h200", 320).pools == two.pools[:1]
    with pytest.raises(PlanError, match="cannot lose 321"):
        two.with_removed_gpus("h200", 321)
