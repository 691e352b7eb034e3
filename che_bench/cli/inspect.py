"""``che-bench inspect``: one layer's positional term and attention weights of a kept model."""

from __future__ import annotations

from pathlib import Path

import click

from che_bench.cli._common import check_writable, run_dir_option, say
from che_bench.errors import ConfigError

#: The default extrapolated length is the run's longest test length, at most this.
READABLE_LENGTH = 200
#: Whole T × T maps are drawn: the longest input length inspect accepts.
MAX_INSPECT_LENGTH = 1000


def lengths_of(config, length: int | None, at: int | None) -> list[int]:
    """The training length and the extrapolated one (defaults from the run's config)."""
    train = config.train_lengths[1] if length is None else length
    test = min(config.test_lengths[1], READABLE_LENGTH) if at is None else at
    for what, value in (("--length", train), ("--at", test)):
        if not 1 <= value <= MAX_INSPECT_LENGTH:
            raise ConfigError(
                f"{what} {value} is out of range: inspect draws whole T × T maps, "
                f"for input lengths 1..{MAX_INSPECT_LENGTH}"
            )
    return sorted({train, test})


@click.command("inspect")
@click.argument("run_key")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Figure (PNG) or arrays (.npz) to write.",
)
@click.option("--layer", type=int, default=0, show_default=True, help="Layer to look at (0-based).")
@click.option(
    "--length",
    type=int,
    default=None,
    help="Input length inside training  [default: the run's longest training length]",
)
@click.option(
    "--at",
    type=int,
    default=None,
    help=f"Extrapolated input length  [default: the run's longest test length, at most "
    f"{READABLE_LENGTH}]",
)
@click.option(
    "--query",
    type=int,
    default=None,
    help="Plot this query row (an index into the T positions; -1: the last "
    "placeholder) as one line per head instead of heatmaps.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "npz"]),
    default=None,
    help="png: a figure; npz: the arrays, for notebooks  [default: from -o's suffix]",
)
@run_dir_option("Where the runs keep their models.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the sample drawn at each length (and of random positions).",
)
def inspect(
    run_key: str,
    output: Path,
    layer: int,
    length: int | None,
    at: int | None,
    query: int | None,
    fmt: str | None,
    run_dir: Path,
    seed: int,
) -> None:
    """Draw what a kept model's encoding adds to one layer's attention logits.

    For one sample at a training length and one at a longer, extrapolated length: the
    encoding's positional term per head (the bias B of ALiBi, KERPLE, T5, FIRE; DAPE's
    adapted scores A + B + f(A, B) beside its B; RoPE's rotation kernel; Transformer-XL's
    and CoPE's S − q·kᵀ/√d) and the attention weights. RUN_KEY is a run's key or a
    unique prefix of it (`che-bench runs list` shows them). Dashed lines mark where the
    output placeholders start (query and key index N).

    \b
    Examples:
      che-bench inspect 3f9c2a -o alibi.png
      che-bench inspect 3f9c2a -o dape.png --layer 2 --length 40 --at 300
      che-bench inspect 3f9c2a -o rows.png --query -1
      che-bench inspect 3f9c2a -o maps.npz      # np.load(...)["N40/bias_B"]: [H, T, T]
    """
    from che_bench.running.kept import find

    fmt = fmt or ("npz" if output.suffix.lower() == ".npz" else "png")
    check_writable(output, "output")
    if fmt == "png":
        from che_bench.analysis.figure import pyplot

        pyplot()  # a missing extra fails before any work
    from che_bench.analysis.maps import layer_error

    kept = find(run_dir, run_key)
    config = kept.config
    layers = config.model.num_layers
    if not 0 <= layer < layers:
        raise ConfigError("--" + layer_error(layer, layers))
    lengths = lengths_of(config, length, at)

    from che_bench.analysis import collect
    from che_bench.analysis.figure import map_names, write, write_npz
    from che_bench.generators import get_task

    task = get_task(config.task, **config.task_params)
    model = kept.load("cpu")
    maps = {n: collect(model, task, n, layer, seed=seed, query=query) for n in lengths}
    names = ", ".join(map_names(maps))
    shown = " and ".join(str(m.length) for m in maps.values())
    if fmt == "npz":
        keys = write_npz(maps, output)
        say(f"wrote {output}: {len(keys)} arrays, layer {layer}, N = {shown}, maps: {names}")
        return
    title = (
        f"{config.encoding} on {config.task} · run {config.run_key} · layer {layer} · "
        f"N = input length, T = N + output placeholders"
    )
    layout = write(maps, output, title)
    what = f"query {query}, one line per head" if query is not None else "one per head"
    say(
        f"wrote {output}: layer {layer}, N = {shown}, maps: {names} "
        f"({layout.panels} panels: {what})"
    )
