"""``che-bench inspect`` and ``Encoding.explain``: the maps, the capture, the figure, the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

from che_bench.analysis import ATTENTION, collect
from che_bench.analysis.figure import short, write, write_npz
from che_bench.cli import main
from che_bench.config import resolve
from che_bench.encodings import build_encoding, list_encodings
from che_bench.encodings.base import scaled_logits
from che_bench.encodings.dape import DAPE
from che_bench.encodings.rope import rotate
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.model import Encoder
from che_bench.running.kept import save
from che_bench.running.runner import build_model
from che_bench.seeding import torch_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = list_encodings()
T = 12
HEADS = 8


def layer_inputs(name: str, causal: bool = False, layer: int = 1):
    """An encoding in a small model and its layer's ctx, q, k for one random sequence."""
    torch.manual_seed(0)
    model = Encoder(3, 3, build_encoding(name, causal=causal)).eval()
    attention, encoding = model.layers[layer].attention, model.encoding
    x = torch.randn(1, T, 64, generator=torch.Generator().manual_seed(1))

    def heads(t):
        return t.view(1, T, HEADS, 8).transpose(1, 2)

    encoding.begin_forward()
    ctx = encoding.prepare(layer, T, x.device, torch.Generator().manual_seed(2))
    q, k = encoding.qk(layer, ctx, heads(attention.q(x)), heads(attention.k(x)))
    return encoding, ctx, q, k


# -- Encoding.explain over the whole registry ---------------------------------------------
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", NAMES)
def test_explain_gives_finite_head_maps(name, causal):
    encoding, ctx, q, k = layer_inputs(name, causal)
    maps = encoding.explain(1, ctx, q, k)
    assert isinstance(maps, dict)
    for label, values in maps.items():
        assert isinstance(label, str) and label
        assert values.shape == (HEADS, T, T), label
        assert values.dtype == torch.float32 and values.device.type == "cpu"
        assert not values.requires_grad and torch.isfinite(values).all(), label
    scores = encoding.scores(1, ctx, q, k)[0].detach()
    if isinstance(encoding, DAPE):
        adapted = [v for n, v in maps.items() if n.startswith("adapted")]
        assert len(adapted) == 1
        torch.testing.assert_close(adapted[0], scores)
    if ctx.bias is not None:
        torch.testing.assert_close(maps["bias B"], ctx.bias.detach())
    elif encoding.absolute or name == "nope":
        assert maps == {}
    keys = [short(n) for n in maps]
    assert len(set(keys)) == len(keys)  # distinct array names in the npz


@pytest.mark.parametrize("name", ["relative", "rand-relative", "cope"])
def test_content_dependent_terms_are_scores_minus_plain_logits(name):
    encoding, ctx, q, k = layer_inputs(name)
    (term,) = encoding.explain(1, ctx, q, k).values()
    plain = scaled_logits(q, k)[0].detach()
    torch.testing.assert_close(term + plain, encoding.scores(1, ctx, q, k)[0].detach())


@pytest.mark.parametrize("name", ["rope", "rand-rope"])
def test_rope_kernel_and_rotation_effect(name):
    encoding, ctx, q, k = layer_inputs(name)
    maps = encoding.explain(1, ctx, q, k)
    kernel, effect = maps["rotation kernel"], maps["rotation effect: S − S₀"]
    torch.testing.assert_close(kernel.diagonal(dim1=1, dim2=2), torch.full((HEADS, T), 4 / 8**0.5))
    assert torch.equal(kernel[0], kernel[HEADS - 1])  # no parameter: the same in every head
    # the kernel is the logit of q = k with unit pairs, rotated to each position
    unit = torch.tensor([1.0, 0.0] * 4).expand(T, 8)
    rotated = rotate(unit, ctx.positions)
    torch.testing.assert_close(kernel[0], rotated @ rotated.T / 8**0.5)
    p = ctx.positions
    plain = scaled_logits(rotate(q, -p), rotate(k, -p))[0].detach()
    torch.testing.assert_close(effect + plain, encoding.scores(1, ctx, q, k)[0].detach())
    if name == "rope":  # shift invariant: constant along each diagonal
        torch.testing.assert_close(kernel[0, 1:, 1:], kernel[0, :-1, :-1])


def test_dape_adapted_map_is_a_plus_b_plus_mlp_of_a_and_b():
    """The official formula, independently: A + B + Linear(LeakyReLU(Linear([A‖B])))."""
    encoding, ctx, q, k = layer_inputs("dape-kerple")
    maps = encoding.explain(1, ctx, q, k)
    a, b = scaled_logits(q, k)[0].detach(), ctx.bias.detach()
    mixer = encoding.mixers[1]
    pairs = torch.cat([a, b]).permute(1, 2, 0)  # [T, T, 2H]
    f = mixer.second(F.leaky_relu(mixer.first(pairs), 0.01)).permute(2, 0, 1)
    torch.testing.assert_close(maps["adapted A+B+f(A,B)"], (a + b + f).detach())
    torch.testing.assert_close(maps["bias B"], b)


# -- collect -------------------------------------------------------------------------------
def smoke_model(pe: str, task: str = "reverse_string"):
    config = resolve(task, pe, preset="smoke")
    return config, build_model(config).eval()


def test_collect_reads_the_draw_the_forward_made():
    """A randomized encoding: the recomputed bias is the one the forward used in that layer."""
    config, model = smoke_model("rand-alibi")
    task = get_task(config.task)
    seen = {}
    prepare = model.encoding.prepare

    def recording(layer, length, device, generator):
        ctx = prepare(layer, length, device, generator)
        seen[layer] = ctx.bias
        return ctx

    model.encoding.prepare = recording
    rng = np.random.default_rng(np.random.SeedSequence([5, 9]))
    batch = task.sample(rng, 1, 9)
    with torch.no_grad():
        model(torch.as_tensor(batch.inputs), 9, generator=torch_generator(torch.device("cpu"), 5))
    forward = seen[2].clone()
    maps = collect(model, task, 9, 2, seed=5)
    np.testing.assert_array_equal(maps.maps["bias B"], forward.numpy())
    assert any("one draw" in note for note in maps.notes)


def test_collect_attention_rows_and_query():
    config, model = smoke_model("alibi")
    maps = collect(model, get_task(config.task), 7, 4, query=-1)
    assert maps.length == 7 and maps.total == 14 and maps.query == 13
    np.testing.assert_allclose(maps.maps[ATTENTION].sum(-1), 1.0, rtol=1e-5)
    rows = maps.rows()
    assert rows["bias B"].shape == (HEADS, 14)
    np.testing.assert_array_equal(rows["bias B"], maps.maps["bias B"][:, 13])


def test_collect_causal_attention_is_masked():
    config = resolve("reverse_string", "kerple", preset="smoke", causal=True)
    maps = collect(build_model(config), get_task(config.task), 6, 0)
    upper = np.triu(np.ones((12, 12), dtype=bool), 1)
    assert (maps.maps[ATTENTION][:, upper] == 0).all()


@pytest.mark.parametrize(("length", "layer", "query", "message"), [
    (5, 5, None, "layer 5 is out of range: the model has 5 layers"),
    (5, -1, None, "layer -1 is out of range"),
    (0, 0, None, "length must be >= 1"),
    (5, 0, 10, "query 10 is out of range for T = 10"),
])  # fmt: skip
def test_collect_refuses_bad_arguments(length, layer, query, message):
    config, model = smoke_model("alibi")
    with pytest.raises(ConfigError, match=message):
        collect(model, get_task(config.task), length, layer, query=query)


# -- the figure ----------------------------------------------------------------------------
def test_figure_layout_counts_panels_and_colour_bars(tmp_path):
    config, model = smoke_model("dape-kerple")
    task = get_task(config.task)
    maps = {n: collect(model, task, n, 0) for n in (6, 15)}
    layout = write(maps, tmp_path / "f.png", "title")
    rows = 3 * 2  # (bias B, adapted, attention) × 2 lengths
    assert layout.rows[0] == "bias B · N = 6" and len(layout.rows) == rows
    assert layout.columns == HEADS and layout.panels == HEADS * rows
    assert layout.colorbars == rows and layout.axes == HEADS * rows + rows
    assert layout.size_px[0] <= 2400
    queried = {n: collect(model, task, n, 0, query=-1) for n in (6, 15)}
    lines = write(queried, tmp_path / "q.png", "title")
    assert lines.panels == 3 * 2 and lines.axes == 3 * 2 and lines.colorbars == 0


def test_short_names():
    assert short("bias B") == "bias_B"
    assert short("adapted A+B+f(A,B)") == "adapted"
    assert short("positional term: S − q·kᵀ/√d") == "positional_term"
    assert short("rotation effect: S − S₀") == "rotation_effect"
    assert short("attention") == "attention"


# -- the CLI -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Kept (untrained) smoke models for a few encodings: {encoding: run_key}."""
    root = tmp_path_factory.mktemp("runs")
    keys = {}
    for pe in ("alibi", "kerple", "dape-kerple", "rope", "nope"):
        config, model = smoke_model(pe)
        save(root / config.run_key, config, model, run_id="0" * 32, score=None)
        keys[pe] = config.run_key
    return root, keys


def invoke(*args: str):
    return CliRunner().invoke(main, ["inspect", *args])


#: Maps per encoding, the attention weights included.
MAPS = {"alibi": 2, "kerple": 2, "dape-kerple": 3, "rope": 3, "nope": 1}


@pytest.mark.parametrize("pe", ["alibi", "kerple", "dape-kerple", "rope", "nope"])
def test_inspect_writes_a_readable_png(run_dir, tmp_path, pe):
    import matplotlib.image

    root, keys = run_dir
    out = tmp_path / f"{pe}.png"
    result = invoke(keys[pe][:8], "-o", str(out), "--run-dir", str(root), "--at", "30")
    assert result.exit_code == 0, (result.output, result.exception)
    panels = HEADS * MAPS[pe] * 2
    line = result.stdout.strip()
    assert line.startswith(f"wrote {out}: layer 0, N = 20 and 30, maps: ")
    assert f"({panels} panels" in line and line.count("\n") == 0
    image = matplotlib.image.imread(out)
    height, width = image.shape[:2]
    assert 1500 <= width <= 2400 and 400 <= height <= 2400
    assert height >= 250 * MAPS[pe] * 2  # one row of panels per map and length
    assert image.reshape(-1, image.shape[-1]).std(0).max() > 0.05  # not one colour


def test_inspect_query_lines(run_dir, tmp_path):
    root, keys = run_dir
    out = tmp_path / "q.png"
    result = invoke(keys["dape-kerple"], "-o", str(out), "--run-dir", str(root), "--query", "-1")
    assert result.exit_code == 0, result.output
    assert "(6 panels: query -1, one line per head)" in result.stdout
    assert out.stat().st_size > 10_000


def test_inspect_npz(run_dir, tmp_path):
    root, keys = run_dir
    out = tmp_path / "maps.npz"
    args = ("-o", str(out), "--run-dir", str(root), "--length", "8", "--at", "25")
    result = invoke(keys["dape-kerple"], *args, "--layer", "3")
    assert result.exit_code == 0, result.output
    arrays = np.load(out)
    for n in (8, 25):
        total = 2 * n  # reverse_string: N tokens + N placeholders
        for name in ("bias_B", "adapted", "attention"):
            assert arrays[f"N{n}/{name}"].shape == (HEADS, total, total)
        attention = arrays[f"N{n}/attention"]
        np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-5)
        adapted = torch.from_numpy(arrays[f"N{n}/adapted"])  # the scores, softmaxed
        np.testing.assert_allclose(torch.softmax(adapted, -1).numpy(), attention, atol=1e-6)
    assert "N8/adapted: adapted A+B+f(A,B)" in list(arrays["names"])
    names = ("bias_B", "adapted", "attention")
    assert set(arrays) == {f"N{n}/{m}" for n in (8, 25) for m in names} | {"names"}


def test_npz_query_rows(tmp_path):
    config, model = smoke_model("rope")
    maps = {n: collect(model, get_task(config.task), n, 1, query=0) for n in (4,)}
    keys = write_npz(maps, tmp_path / "m.npz")
    arrays = np.load(tmp_path / "m.npz")
    assert "N4/rotation_kernel/row" in keys and int(arrays["N4/query"]) == 0
    assert arrays["N4/attention/row"].shape == (HEADS, 8)
    assert math.isclose(arrays["N4/rotation_kernel/row"][0, 0], 4 / 8**0.5, rel_tol=1e-6)


@pytest.mark.parametrize(("args", "message"), [
    (["nokey", "-o", "x.png"], "no kept model for run 'nokey'"),
    (["KEY", "-o", "x.png", "--layer", "9"], "--layer 9 is out of range: the model has 5 layers"),
    (["KEY", "-o", "x.png", "--length", "0"], "--length 0 is out of range"),
    (["KEY", "-o", "x.png", "--query", "99"], "query 99 is out of range for T = 40"),
    (["KEY", "-o", "x.png", "--format", "svg"], "Invalid value for '--format'"),
])  # fmt: skip
def test_inspect_bad_input_is_one_line(run_dir, tmp_path, monkeypatch, args, message):
    root, keys = run_dir
    monkeypatch.chdir(tmp_path)
    args = [keys["alibi"] if a == "KEY" else a for a in args]
    result = invoke(*args, "--run-dir", str(root))
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()
