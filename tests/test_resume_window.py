"""A resumed run's row equals an uninterrupted one, also when the checkpoint falls inside a
logging window (the window's partial sums travel in the checkpoint)."""

from __future__ import annotations

import pytest

from che_bench.config import resolve
from che_bench.running.runner import RunHooks, execute


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so no failed row is made of it."""


@pytest.mark.parametrize(("steps", "every"), [(30, 28), (23, 7)])
def test_final_loss_survives_a_checkpoint_inside_a_log_window(tmp_path, steps, every):
    config = resolve("parity_check", "alibi", preset="smoke", seed=1, steps=steps,
                     checkpoint_every=every, batch_size=8, eval_samples=4)  # fmt: skip
    assert every % config.log_every  # the checkpoint falls inside a logging window
    straight = execute(config, device="cpu", run_dir=None)

    def die_at_the_end(progress) -> None:
        if progress.step == steps:  # trained, last checkpoint written at step `every·k`
            raise Killed

    with pytest.raises(Killed):
        execute(config, device="cpu", run_dir=tmp_path, hooks=RunHooks(on_train=die_at_the_end))
    resumed_at: list[int] = []
    resumed = execute(
        config, device="cpu", run_dir=tmp_path, hooks=RunHooks(on_resume=resumed_at.append)
    )
    assert resumed_at == [(steps - 1) // every * every]
    assert resumed.final_loss == straight.final_loss
    assert resumed.accuracy_by_length == straight.accuracy_by_length
    assert (resumed.score, resumed.steps) == (straight.score, straight.steps)
