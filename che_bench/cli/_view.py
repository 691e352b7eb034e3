"""Live progress and a finished row, as ``run``, ``run --seeds`` and ``evaluate`` show them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from che_bench.cli._common import console

if TYPE_CHECKING:
    from che_bench.results.record import RunRecord


class ProgressView:
    """A live bar on a terminal; plain log lines otherwise (CI, pipes)."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.live = out.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=out,
            disable=not self.live,
        )
        self.bars: dict[str, Any] = {}

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def hooks(self):
        from che_bench.running.runner import RunHooks

        return RunHooks(on_train=self.on_train, on_eval=self.on_eval, on_resume=self.on_resume)

    def on_resume(self, step: int) -> None:
        self.out.print(f"resuming from the checkpoint at step {step}", highlight=False)

    def _bar(self, name: str, total: int) -> Any:
        if name not in self.bars:
            self.bars[name] = self.progress.add_task(name, total=total, info="")
        return self.bars[name]

    def on_train(self, p) -> None:
        info = f"loss {p.loss:.4f}  acc {p.accuracy:.3f}  {p.steps_per_s:.1f} steps/s"
        self.progress.update(self._bar("train", p.total), completed=p.step, info=info)
        if not self.live:
            self.out.print(f"step {p.step}/{p.total}  {info}", highlight=False)

    def on_eval(self, done: int, total: int) -> None:
        self.progress.update(self._bar("evaluate", total), completed=done)
        if not self.live and (done == total or done % max(1, total // 5) == 0):
            self.out.print(f"evaluated {done}/{total} lengths", highlight=False)


def render_row(record: RunRecord) -> None:
    table = Table(title="result", box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    score = record.score
    table.add_row("status", record.status + (f" ({record.error})" if record.error else ""))
    table.add_row("score", "-" if score is None else f"{score:.4f}  (chance {record.chance:.2f})")
    curve = record.accuracy_by_length
    if curve:
        keys = list(curve)
        picks = sorted({keys[0], keys[len(keys) // 2], keys[-1]}, key=int)
        table.add_row("accuracy", "  ".join(f"ℓ={k}: {curve[k]:.3f}" for k in picks))
    if record.train_score is not None:
        lo, hi = record.train_lengths
        table.add_row("in-distribution", f"{record.train_score:.4f}  (lengths {lo}-{hi})")
    table.add_row("steps", str(record.steps))
    if record.final_loss is not None:
        table.add_row("final loss", f"{record.final_loss:.4f}")
    table.add_row("wall time", f"{record.wall_time_s:.1f} s on {record.device}")
    table.add_row("run key", record.run_key)
    console.print(table)
