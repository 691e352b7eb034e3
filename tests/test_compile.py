"""``compile: true`` compiles the forward once for every length, not once per layer × length,
and trains to the same numbers as eager (up to float rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch._dynamo as dynamo

from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.seeding import torch_generator
from che_bench.training import train

CPU = torch.device("cpu")
#: Graphs compiled over five lengths. One where nothing breaks the graph; KERPLE's in-place
#: clamp and DAPE's hand-written mixer run eagerly (a few breaks), randomized encodings
#: break at each draw: still a bounded number of graphs, not one per layer and length.
MOST_GRAPHS = {"kerple": 2, "rand-rope": 12, "dape-kerple": 16}


@pytest.mark.parametrize("name", ["nope", "alibi", "kerple", "rope", "relative", "rand-rope",
                                  "dape-kerple"])  # fmt: skip
def test_one_compilation_serves_every_length(name: str) -> None:
    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    dynamo.reset()
    config = resolve("reverse_string", name, preset="smoke")
    model = build_model(config)
    task = get_task(config.task)
    forward = torch.compile(model, backend=counting, dynamic=True)
    rng, generator = np.random.default_rng(0), torch_generator(CPU, 0, 2)
    for length in (3, 7, 12, 5, 20):
        batch = task.sample(rng, 2, length)
        k = batch.targets.shape[1]
        noise = model.dropout_noise(2, length + k, generator, CPU)
        forward(torch.from_numpy(batch.inputs.copy()), k, generator=generator, noise=noise)
    dynamo.reset()
    assert 1 <= len(graphs) <= MOST_GRAPHS.get(name, 1)


@pytest.mark.parametrize("name", ["alibi", "kerple"])
def test_compiled_training_matches_eager(monkeypatch, name: str) -> None:
    monkeypatch.setattr(train, "COMPILE_BACKEND", "aot_eager")
    dynamo.reset()
    losses = {}
    for compiled in (False, True):
        config = resolve("parity_check", name, preset="smoke", steps=6, log_every=1,
                         compile=compiled)  # fmt: skip
        trainer = train.Trainer(build_model(config), get_task(config.task), config, CPU)
        trainer.model.train()
        losses[compiled] = []
        for _ in range(6):
            assert trainer.update() is None or trainer.step == 6
            losses[compiled].append(trainer.logged[0])
    dynamo.reset()
    assert np.allclose(losses[True], losses[False], rtol=1e-5, atol=0)
