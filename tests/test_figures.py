"""Paper figures: the curves (seed bands, families, chance, training range, protocol caption,
x-axis from the first length) and the heatmap (relative to chance, families, empty cells),
one protocol per figure, written as PNG, PDF or SVG."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from test_report import row  # a leaderboard row as a run writes it, with a chosen score

from che_bench.cli import main
from che_bench.errors import ConfigError
from che_bench.results import families, plots
from che_bench.results.leaderboard import append_rows

pytest.importorskip("matplotlib")


@pytest.fixture
def figures(monkeypatch):
    """The figures the plots draw, kept to be read after they are really written."""
    kept = []
    real = plots.save
    monkeypatch.setattr(
        plots, "save", lambda fig, out, plt: kept.append(fig) or real(fig, out, plt)
    )
    return kept


def board(tmp_path, rows, name="board.jsonl"):
    path = tmp_path / name
    append_rows(path, rows)
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


FIVE = [  # five encodings of three families, in a scrambled order; two seeds each
    row(encoding=pe, seed=s, score=score + 0.1 * s)
    for pe, score in (
        ("dape-alibi", 0.6),
        ("rope", 0.5),
        ("alibi", 0.7),
        ("rand-rope", 0.65),
        ("nope", 0.52),
    )
    for s in (0, 1)
]


def test_curves_bands_families_chance_and_the_axis_from_the_first_length(tmp_path, figures):
    plots.plot_curves(FIVE, tmp_path / "c.png")
    [fig] = figures
    [ax] = [a for a in fig.axes if a.get_title()]
    assert ax.get_xlim() == (41, 44)  # the test lengths only (no training accuracy here)
    [legend] = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["nope", "rope", "rand-rope", "alibi", "dape-alibi"]  # families, then variants
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["chance"].get_ydata()) == [0.5, 0.5]
    rope, rand_rope, alibi = lines["rope"], lines["rand-rope"], lines["alibi"]
    assert rope.get_color() == rand_rope.get_color() != alibi.get_color()  # a colour per family
    assert rope.get_linestyle() != rand_rope.get_linestyle()
    # mean of the two seeds (0.5 and 0.6, + 0.01·(i % 3)) and a min–max band around it
    assert list(rope.get_ydata()) == pytest.approx([0.55, 0.56, 0.57, 0.55])
    bands = [c for c in ax.collections if c.get_paths()]
    assert len(bands) == 5
    ys = {round(float(y), 4) for band in bands for y in band.get_paths()[0].vertices[:, 1]}
    assert {0.5, 0.6} <= ys  # rope's seeds at length 41 bound its band
    caption = " ".join(" ".join(t.get_text() for t in fig.texts).split())  # unwrapped
    assert "preset smoke, 5 steps" in caption and "test 41-44" in caption
    assert "min–max over those seeds" in caption and "2 seeds" in caption
    assert "lr 0.001 (the only one)" in caption


def test_small_multiples_by_level_training_range_and_log_axis(tmp_path, figures):
    rows = [row(task="reverse_string", encoding="nope", score=0.6, train_score=0.9),
            row(task="parity_check", encoding="nope", score=0.5, train_score=0.8)]  # fmt: skip
    plots.plot_curves(rows, tmp_path / "c.png", log_x=True)
    [fig] = figures
    panels = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in panels] == ["parity_check", "reverse_string"]  # regular, dcf
    assert all(a.get_xscale() == "log" and a.get_xlim() == (1, 44) for a in panels)
    [shade] = [p for p in panels[0].patches if p.get_label() == "training lengths"]
    assert (shade.get_x(), shade.get_x() + shade.get_width()) == (1, 20)


def test_curves_run_on_through_the_evaluated_lengths(tmp_path, figures):
    train = row(encoding="alibi", score=0.6)
    more = train.evaluation_of((50, 60), samples=4, stride=10, seed=0, device="cpu")
    more = dataclasses.replace(more, status="ok", accuracy_by_length={"50": 0.3, "60": 0.2})
    plots.plot_curves([train], tmp_path / "c.png", [more])
    [ax] = [a for a in figures[0].axes if a.get_title()]
    [alibi] = [line for line in ax.get_lines() if line.get_label() == "alibi"]
    assert list(alibi.get_xdata()) == [41, 42, 43, 44, 50, 60]
    assert ax.get_xlim() == (41, 60)
    assert "evaluate" in "\n".join(t.get_text() for t in figures[0].texts)


def test_heatmap_relative_to_chance_families_and_empty_cells(tmp_path, figures):
    rows = [row(encoding="dape-alibi", score=0.8), row(encoding="nope", score=0.45),
            row(task="reverse_string", encoding="alibi", score=0.9),
            row(task="reverse_string", encoding="nope", score=0.5)]  # fmt: skip
    plots.plot_heatmap(rows, tmp_path / "h.png")
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["nope", "alibi", "dape-alibi"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["parity_check (50%)",
                                                           "reverse_string (50%)"]  # fmt: skip
    grid = ax.images[0].get_array()
    assert grid[0].tolist()[0] == pytest.approx(-5.0) and grid[1, 1] == pytest.approx(40.0)
    assert grid.mask[0, 1] and grid.mask[1, 2]  # no alibi on parity, no dape-alibi on reverse
    norm = ax.images[0].norm
    assert norm.vmin == -norm.vmax  # diverging, centred at chance
    cells = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text()
             for t in ax.texts}  # fmt: skip
    assert cells[(0, 0)] == "45.0" and cells[(2, 0)] == "80.0"  # the raw score is printed
    assert cells[(1, 0)] == cells[(2, 1)] == "–"
    assert sum(1 for p in ax.patches if p.get_hatch()) == 2


def test_mixed_protocols_are_refused_in_one_figure_and_split_by_the_command(tmp_path):
    rows = [row(score=0.6), row(encoding="nope", score=0.5, steps=7)]
    with pytest.raises(ConfigError, match=r"2 protocols \(.*5 steps.*7 steps.*--protocol"):
        plots.plot_curves(rows, tmp_path / "c.png")
    path = board(tmp_path, rows)
    out = tmp_path / "fig.svg"
    split = cli("plot", path, "-o", out, "--kind", "heatmap")
    assert split.exit_code == 0, split.output
    written = sorted(p.name for p in tmp_path.glob("fig-*.svg"))
    assert len(written) == 2 and not out.exists()
    assert all(f"wrote {tmp_path / name}" in split.output for name in written)
    digest = written[0][len("fig-") : -len(".svg")]
    one = cli("plot", path, "-o", out, "--protocol", digest)
    assert one.exit_code == 0 and out.exists() and f"wrote {out}\n" in one.output
    none = cli("plot", path, "-o", out, "--protocol", "nothing-like-it")
    assert none.exit_code == 2 and "no protocol matches 'nothing-like-it'" in none.output
    assert "Traceback" not in none.output


@pytest.mark.parametrize("kind", ["curves", "heatmap"])
def test_pdf_and_svg_are_valid_vector_files_and_other_suffixes_are_refused(tmp_path, kind):
    path = board(tmp_path, FIVE)
    pdf, svg = tmp_path / "f.pdf", tmp_path / "f.svg"
    assert cli("plot", path, "-o", pdf, "--kind", kind).exit_code == 0
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert cli("plot", path, "-o", svg, "--kind", kind).exit_code == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert "rand-rope" in text and "dape-alibi" in text  # text kept as text
    bad = cli("plot", path, "-o", tmp_path / "f.jpg", "--kind", kind)
    assert bad.exit_code == 2 and "must end in .png, .pdf, .svg" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_families_read_from_the_name_and_the_registry():
    m = families.member("dape-rand-alibi")
    assert (m.family, m.base, m.variant) == ("alibi", "alibi", "dape-rand")
    m = families.member("rand-relative[lookup=intended]")
    assert (m.family, m.base, m.variant) == ("relative", "relative", "rand")
    assert families.member("dapev2-kerple-power").family == "kerple"  # the registry's family
    assert families.member("rand-sinusoidal").family == "absolute"
    assert families.member("not-installed-pe").family == "not-installed-pe"
    assert families.family_colour("alibi") == families.family_colour("alibi") != "#000000"
    order = [m.label for m in families.ordered(["t5", "dape-nope", "rope", "nope", "cope"])]
    assert order == ["nope", "dape-nope", "rope", "t5", "cope"]
