"""GPU paths that can be checked without a GPU: Ray's device request, the shared-GPU budget."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from che_bench.config import resolve
from che_bench.running import workers
from che_bench.running.executors import RayExecutor
from che_bench.training import evaluate as evaluate_module
from che_bench.training.evaluate import GPU_EVAL_FRACTION, eval_budget


class FakeRay:
    """Just enough of Ray for ``RayExecutor.map_unordered``: tasks run at once, here."""

    def __init__(self, gpus: int) -> None:
        self.resources = {"CPU": 4.0, "GPU": float(gpus)}
        self.requests: list[dict] = []
        self.calls: list[tuple] = []
        self.exceptions = types.SimpleNamespace(RayError=RuntimeError)

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict[str, float]:
        return self.resources

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **request):
                fake.requests.append(request)
                return self

            def remote(self, *args):
                fake.calls.append(args)
                return len(fake.calls)

        return Task()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return self.calls[ref - 1]

    def cancel(self, ref, force=False) -> None:
        pass


@pytest.mark.parametrize(("gpus", "device", "num_gpus"), [(2, "cuda", 1.0), (0, "cpu", 0.0)])
def test_ray_auto_device_follows_the_cluster(monkeypatch, gpus, device, num_gpus) -> None:
    """``--device auto`` with Ray: resolved on the driver from the cluster's GPUs, and each
    task requests one, so Ray makes a GPU visible to the run (it used to ask for none)."""
    fake = FakeRay(gpus)
    monkeypatch.setattr("che_bench.running.executors.import_ray", lambda: fake)
    config = resolve("parity_check", "nope", preset="smoke")
    executor = RayExecutor("auto", None)
    assert "if the cluster has GPUs" in executor.describe()
    calls = list(executor.map_unordered([config]))
    assert fake.requests == [{"num_cpus": 1.0, "num_gpus": num_gpus, "max_retries": 0}]
    assert calls[0][1] == device
    assert executor.describe().count(f"device {device}") == 1


def test_ray_auto_without_gpus_per_run_is_the_cpu(monkeypatch) -> None:
    """``--gpus-per-run 0`` on a GPU cluster: the tasks see no GPU, so ``auto`` is the CPU
    (it used to settle on cuda and every run failed: no GPU visible to the task)."""
    fake = FakeRay(2)
    monkeypatch.setattr("che_bench.running.executors.import_ray", lambda: fake)
    config = resolve("parity_check", "nope", preset="smoke")
    executor = RayExecutor("auto", None, gpus_per_run=0)
    assert "0 GPU per run" in executor.describe()
    calls = list(executor.map_unordered([config]))
    assert fake.requests[0]["num_gpus"] == 0 and calls[0][1] == "cpu"


def test_ray_fractional_gpus_share_the_budget(monkeypatch) -> None:
    fake = FakeRay(1)
    monkeypatch.setattr("che_bench.running.executors.import_ray", lambda: fake)
    config = resolve("parity_check", "nope", preset="smoke")
    calls = list(RayExecutor("auto", None, gpus_per_run=0.25).map_unordered([config]))
    assert fake.requests[0]["num_gpus"] == 0.25
    assert calls[0][4] == 4  # four runs share one GPU: each gets a quarter of the budget


def fake_gpu(monkeypatch, total: int, free: int) -> None:
    props = types.SimpleNamespace(total_memory=total)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, total))


def test_gpu_budget_is_a_share_of_the_total_not_of_the_free(monkeypatch) -> None:
    """Four runs on one 80 GB GPU each get a quarter of it, whenever they start: a run
    that starts while the others hold 60 GB is not squeezed to a quarter of the 20 GB free."""
    total = 80 * 2**30
    fake_gpu(monkeypatch, total, free=20 * 2**30)
    cuda = torch.device("cuda")
    assert eval_budget(cuda, share=4) == int(total * GPU_EVAL_FRACTION) // 4
    assert eval_budget(cuda) == int(total * GPU_EVAL_FRACTION)
    assert eval_budget(torch.device("cpu"), share=2) < eval_budget(torch.device("cpu"))


def test_local_workers_pass_their_share_to_the_evaluation(monkeypatch) -> None:
    seen = {}

    def execute(config, *, device, run_dir, max_memory):
        seen.update(device=device, max_memory=max_memory)
        return "record"

    monkeypatch.setattr("che_bench.running.runner.execute", execute)
    monkeypatch.setattr("che_bench.running.runner.resolve_device", lambda name: torch.device(name))
    monkeypatch.setattr(evaluate_module, "available_memory", lambda device: 8 * 2**30)
    config = resolve("parity_check", "nope", preset="smoke")
    assert workers.run_one(config, "cpu", Path("runs"), None, 4) == "record"
    assert seen == {"device": "cpu", "max_memory": 8 * 2**30 // 4 // 4}


def test_bf16_evaluation_gives_finite_accuracies() -> None:
    from che_bench.generators import get_task
    from che_bench.running.runner import build_model
    from che_bench.training.evaluate import EvalSpec, evaluate

    config = resolve("parity_check", "alibi", preset="smoke", precision="bf16")
    spec = EvalSpec.from_config(config)
    assert spec.precision == "bf16"
    model = build_model(config)
    dtypes = []
    model.head.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    scores = evaluate(model, get_task(config.task), spec, torch.device("cpu"))
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the forward ran under bf16 autocast
    assert all(0.0 <= a <= 1.0 for a in scores.accuracy_by_length.values())


def test_cope_running_sum_without_cumsum_equals_cumsum(monkeypatch) -> None:
    """On CUDA in deterministic mode CoPE sums by a triangular matmul (CUDA's float cumsum
    raises there); forced on the CPU, it equals cumsum up to rounding."""
    from che_bench.encodings import cope

    x = torch.rand(2, 3, 7, 50, dtype=torch.float64)
    assert torch.equal(cope.running_sum(x), x.cumsum(-1))  # the CPU keeps cumsum
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    torch.testing.assert_close(cope.running_sum(x), x.cumsum(-1))
