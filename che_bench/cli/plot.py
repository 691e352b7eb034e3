"""``che-bench plot``: a leaderboard's curves, heatmap or training curves, or a history's trend."""

from __future__ import annotations

from pathlib import Path

import click

from che_bench.cli._common import run_dir_option, say


@click.command()
@click.argument("leaderboard", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Figure to create: .png, or vector .pdf / .svg (the format follows the suffix). "
    "Curves and heatmaps of several protocols are written one per protocol, as FILE-<hash>.",
)
@click.option(
    "--kind",
    type=click.Choice(["curves", "heatmap", "trend", "training"]),
    default="curves",
    show_default=True,
    help="trend: LEADERBOARD is a check history (`che-bench check --record`). training: "
    "per-step loss and accuracy from the runs' curve files (RUN_DIR/<run_key>/curve.jsonl).",
)
@run_dir_option("With --kind training: the folder the runs wrote their curve files in.")
@click.option("--task", "-t", "tasks", multiple=True, help="Only tasks matching, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Only encodings matching, repeatable.")
@click.option(
    "--protocol",
    default="",
    help="Curves/heatmap: only the protocol whose description contains this text, e.g. its "
    "hash (65492c0f, as `report` prints it) or 'preset smoke'.",
)
@click.option(
    "--stat",
    type=click.Choice(["best", "mean"]),
    default="best",
    show_default=True,
    help="Heatmap value: max over seeds × lr, or the mean at the best lr.",
)
@click.option("--log-x", is_flag=True, help="Curves: a logarithmic length axis.")
def plot(
    leaderboard: Path,
    output: Path,
    kind: str,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    protocol: str,
    stat: str,
    log_x: bool,
    run_dir: Path,
) -> None:
    """Plot accuracy vs length per encoding (curves: one panel per task, mean and min–max
    band over seeds, the protocol in the caption), a task × encoding heatmap of scores
    relative to chance, or the runs' training curves (loss and accuracy vs step).

    \b
    Examples:
      che-bench plot leaderboards/local.jsonl -o curves.png --task parity_check
      che-bench plot leaderboards/local.jsonl -o curves.pdf --log-x --protocol 65492c0f
      che-bench plot leaderboards/local.jsonl -o heatmap.svg --kind heatmap --stat mean
      che-bench plot history.jsonl -o trend.png --kind trend
      che-bench plot leaderboards/local.jsonl -o training.png --kind training --run-dir runs
    """
    from che_bench.results import plots
    from che_bench.results.report import load_rows

    plots.check_format(output)
    plots.pyplot()  # a missing extra fails before any work
    if kind == "trend":
        from che_bench.results import history

        plots.plot_trend(history.read(leaderboard), output)
        say(f"wrote {output}")
        return
    every = load_rows(leaderboard, tasks, encodings, ("train", "evaluation"))
    rows = [r for r in every if r.kind == "train"]
    if kind == "training":
        from che_bench.results.training_plots import plot_training

        curves = plot_training(rows, output, run_dir)
        say(f"wrote {output} ({curves.summary()})")
        return
    evaluations = [r for r in every if r.kind == "evaluation"]
    split = plots.by_protocol(rows, protocol) if rows else [("", rows)]
    if len(split) > 1:
        say(f"{len(split)} protocols: one figure each (--protocol HASH selects one)")
    for name, chosen in split:
        path = output
        if len(split) > 1:
            path = output.with_name(f"{output.stem}-{plots.protocol_hash(name)}{output.suffix}")
        if kind == "curves":  # extended by the evaluation rows of `che-bench evaluate`
            plots.plot_curves(chosen, path, evaluations, log_x=log_x)
        else:
            plots.plot_heatmap(chosen, path, stat)
        say(f"wrote {path}" + (f" ({plots.short_protocol(name)})" if len(split) > 1 else ""))
