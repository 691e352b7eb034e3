"""DAPE V1/V2 (arXiv 2405.14722, 2410.04798): exactness against the official formulation.

The oracle is ``benchmarks/dape_reference.py``, a plain port of the official formulas
(concat, tile, MLP / conv, residual; tril before the V2 conv in causal mode). Production
and oracle share the very same ``nn.Linear`` / ``nn.Conv2d`` modules, so the weights are
identical and the channel order is [A‖B] by construction.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch
from torch import nn

from che_bench.encodings import (
    ENCODINGS,
    Encoding,
    ModelDims,
    build_encoding,
    get_encoding,
    list_encodings,
    register_encoding,
)
from che_bench.encodings.dape import DAPE
from che_bench.encodings.dape import mixer as dape_mixer
from che_bench.encodings.dape.mixer import mix
from che_bench.errors import ConfigError
from che_bench.model import Encoder, count_parameters

_REF = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "dape_reference.py"
_spec = importlib.util.spec_from_file_location("dape_reference", _REF)
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

CPU = torch.device("cpu")
DIMS = ModelDims()
H = DIMS.num_heads
LAYER = 2
TOL = {"atol": 1e-5, "rtol": 1e-5}
V1_FORMS = ["concat_residual", "bias_only", "concat", "add_residual"]


class TableBias(Encoding):
    """Test bias: B is a learnable [H, T, T] table (so dL/dB is a parameter gradient).

    It stays non-zero above the diagonal in causal mode too (like FIRE's f(0)), which makes
    the V2 tril of the B channels observable.
    """

    has_bias = True
    shift_invariant = False

    def __init__(self, dims, *, causal: bool = False, size: int = 16) -> None:
        super().__init__(dims, causal=causal)
        self.table = nn.Parameter(torch.randn(dims.num_layers, dims.num_heads, size, size))

    def bias(self, layer, length, device, generator):
        return self.table[layer, :, :length, :length]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def wrapped(version: int, causal: bool, form: str | None = None, kernel: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    base = TableBias(DIMS, causal=causal) if form != "no_bias" else build_encoding("nope")
    base.causal = causal
    return DAPE(base, version=version, form=form, kernel=kernel)


def production(enc: DAPE, logits: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
    ctx = enc.prepare(LAYER, logits.shape[-1], CPU, None)
    return enc.from_logits(LAYER, ctx, logits, rows)


def oracle(enc: DAPE, logits: torch.Tensor) -> torch.Tensor:
    mixer = enc.mixers[LAYER]
    bias = enc.base.bias(LAYER, logits.shape[-1], CPU, None)
    if enc.version == 1:
        return ref.official_v1(logits, bias, mixer.first, mixer.second, enc.form)
    return ref.official_v2(logits, bias, mixer.first, mixer.second, enc.causal)


def outputs_and_grads(enc, fn, logits, upstream):
    a = logits.clone().requires_grad_()
    out = fn(enc, a)
    params = [a, *enc.parameters()]
    grads = torch.autograd.grad(out, params, upstream, allow_unused=True)
    return out, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def check_against_oracle(enc: DAPE, batch: int = 3, length: int = 11):
    g = gen(1)
    logits = torch.randn(batch, H, length, length, generator=g)
    upstream = torch.randn(batch, H, length, length, generator=g)
    lower = torch.ones(length, length).tril().bool()
    if enc.causal:  # the model masks j > i after modify: only j <= i reaches the loss
        upstream = upstream * lower
    out, grads = outputs_and_grads(enc, production, logits, upstream)
    want, want_grads = outputs_and_grads(enc, oracle, logits, upstream)
    if enc.causal:
        out, want = out * lower, want * lower
    torch.testing.assert_close(out, want, **TOL)
    names = ["logits", *(n for n, _ in enc.named_parameters())]
    for name, got, expected in zip(names, grads, want_grads):
        torch.testing.assert_close(got, expected, **TOL, msg=lambda m, n=name: f"{n}: {m}")
    live = [
        g for n, g in zip(names, grads) if n.startswith(f"mixers.{LAYER}.") or n == "base.table"
    ]
    assert len(live) in (4, 5) and all(g.abs().sum() > 0 for g in live)  # dL/dB, dL/dW are live


# -- equivalence with the official formulation ----------------------------------------------
CAUSAL = pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])


@CAUSAL
@pytest.mark.parametrize("form", V1_FORMS + ["no_bias"])
def test_v1_matches_official_logits_and_grads(form, causal):
    check_against_oracle(wrapped(1, causal, form))


@CAUSAL
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("form", ["concat_residual", "no_bias"])
def test_v2_matches_official_logits_and_grads(form, kernel, causal):
    check_against_oracle(wrapped(2, causal, form, kernel))


@CAUSAL
@pytest.mark.parametrize("version", [1, 2])
def test_internal_blocks_match_official(version, causal, monkeypatch):
    """Tiny blocks: both blocking modes (sample groups, row slices) and ragged edges."""
    for pairs in (7, 40, 300):
        monkeypatch.setattr(dape_mixer, "BLOCK_PAIRS", pairs)
        check_against_oracle(wrapped(version, causal), batch=3, length=9)


@pytest.mark.parametrize("kernel", [1, 3])
def test_checkpointed_backward_passes_gradcheck(kernel, monkeypatch):
    """The hand-written recomputing backward, on a tiny problem split into blocks."""
    monkeypatch.setattr(dape_mixer, "BLOCK_PAIRS", 10)
    g = gen(13)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    heads, hidden, length = 2, 3, 5
    keep = None if kernel == 1 else torch.ones(length, length, dtype=torch.float64).tril()
    inputs = (rand(2, heads, length, length), rand(heads, length, length))
    inputs += (rand(length, length, hidden), keep, rand(hidden, kernel * heads))
    inputs += (rand(kernel * heads, hidden), rand(heads), kernel)
    assert torch.autograd.gradcheck(dape_mixer._Checkpointed.apply, inputs)


# -- structural properties -------------------------------------------------------------------
@CAUSAL
def test_v2_with_kernel_one_equals_v1(causal):
    v1, v2 = wrapped(1, causal), wrapped(2, causal, kernel=1, seed=1)
    v2.base.load_state_dict(v1.base.state_dict())
    with torch.no_grad():
        for m1, m2 in zip(v1.mixers, v2.mixers):
            for a, b in [(m1.first, m2.first), (m1.second, m2.second)]:
                b.weight.copy_(a.weight[:, :, None, None])
                b.bias.copy_(a.bias)
    logits = torch.randn(2, H, 9, 9, generator=gen(2))
    got, want = production(v2, logits), production(v1, logits)
    if causal:  # identical where the mask keeps the scores
        got, want = got.tril(), want.tril()
    torch.testing.assert_close(got, want, **TOL)


@CAUSAL
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("form", ["concat_residual", "no_bias"])
def test_query_chunks_equal_the_full_rows(version, form, causal):
    """Chunks of query rows (the model's evaluation chunking) are exact, gradients too."""
    enc = wrapped(version, causal, form).double()
    g = gen(3)
    logits = torch.randn(2, H, 13, 13, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, H, 13, 13, generator=g, dtype=torch.float64)
    full = production(enc, logits)
    want = torch.autograd.grad(full, [logits, *enc.parameters()], upstream, allow_unused=True)
    for chunks in ([slice(0, 4), slice(4, 9), slice(9, 13)], [slice(i, i + 1) for i in range(13)]):
        ctx = enc.prepare(LAYER, 13, CPU, None)
        parts = [enc.from_logits(LAYER, ctx, logits[:, :, rows], rows) for rows in chunks]
        chunked = torch.cat(parts, dim=2)
        torch.testing.assert_close(chunked, full, atol=1e-12, rtol=0)
        got = torch.autograd.grad(chunked, [logits, *enc.parameters()], upstream, allow_unused=True)
        for x, y in zip(got, want):
            assert (x is None) == (y is None)
            if x is not None:
                torch.testing.assert_close(x, y, atol=1e-10, rtol=0)
    with torch.no_grad():  # a strided slice of rows too
        rows = slice(3, 11, 2)
        strided = enc.from_logits(LAYER, ctx, logits[:, :, rows], rows)
    torch.testing.assert_close(strided, full[:, :, rows], atol=1e-12, rtol=0)


@pytest.mark.parametrize("version", [1, 2])
def test_split_first_layer_equals_naive_concat(version):
    enc = wrapped(version, causal=False)
    mixer = enc.mixers[LAYER]
    logits = torch.randn(2, H, 10, 10, generator=gen(4))
    bias = enc.base.bias(LAYER, 10, CPU, None)
    w1b, b1, weights = mixer.split()
    c = mixer.batch_independent(w1b, b1, bias)  # W1^B·B + b1, no batch axis
    assert c.shape[-1] == enc.hidden and c.dim() == 3
    split = mix(logits, None, c, None, *weights, enc.kernel) - logits
    joined = torch.cat((logits, bias.expand(2, -1, -1, -1)), dim=1)
    if version == 1:
        joined = joined.permute(0, 2, 3, 1)
    naive = mixer.second(torch.nn.functional.leaky_relu(mixer.first(joined), 0.01))
    naive = naive.permute(0, 3, 1, 2) if version == 1 else naive
    torch.testing.assert_close(split, naive, **TOL)


def encoder_pair(name: str, causal: bool = False, **options):
    """`dape-<b>` and `<b>` encoders that share the base encoding and every other weight."""
    torch.manual_seed(0)
    dape = Encoder(3, 3, build_encoding(name, causal=causal, options=options))
    plain = Encoder(3, 3, dape.encoding.base)
    state = {k.replace("encoding.base.", "encoding."): v for k, v in dape.state_dict().items()}
    plain.load_state_dict({k: v for k, v in state.items() if "mixers" not in k})
    return dape, plain


@pytest.mark.parametrize("name", ["dape-alibi", "dapev2-alibi", "dape-nope", "dapev2-rope"])
def test_zero_last_layer_reduces_to_the_base(name):
    dape, plain = encoder_pair(name)
    x = torch.randint(0, 3, (2, 9), generator=gen(5))
    dape.eval(), plain.eval()
    with torch.no_grad():
        assert not torch.allclose(dape(x, 4), plain(x, 4))
        for mixer in dape.encoding.mixers:
            mixer.second.weight.zero_()
            mixer.second.bias.zero_()
        torch.testing.assert_close(dape(x, 4), plain(x, 4), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["dape-kerple", "dapev2-kerple", "dape-fire", "dape-t5"])
def test_zero_last_layer_reduces_to_learnable_bases(name):
    if name.split("-", 1)[1] not in list_encodings():
        pytest.skip(f"{name.split('-', 1)[1]} is not registered")
    test_zero_last_layer_reduces_to_the_base(name)


@CAUSAL
@pytest.mark.parametrize("name", ["dape-alibi", "dapev2-alibi", "dape-kerple", "dapev2-t5"])
def test_encoder_equals_naive_twin(name, causal):
    """Whole model: production DAPE vs the official formulation, outputs and all gradients."""
    if name.split("-", 1)[1] not in list_encodings():
        pytest.skip(f"{name.split('-', 1)[1]} is not registered")
    torch.manual_seed(0)
    model = Encoder(3, 3, build_encoding(name, causal=causal)).double().train()
    x = torch.randint(0, 3, (3, 10), generator=gen(6))
    weights = torch.randn(3, 4, 3, generator=gen(7), dtype=torch.float64)
    results = []
    for encoding in (model.encoding, ref.NaiveDAPE(model.encoding)):
        model.encoding = encoding
        model.zero_grad()
        out = model(x, 4, generator=gen(8))
        (out * weights).sum().backward()
        results.append((out, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (out, grads), (want, want_grads) = results  # float64: fp32 noise compounds over 5 layers
    torch.testing.assert_close(out, want, atol=1e-10, rtol=1e-10)
    assert grads.keys() == want_grads.keys()
    for key in grads:
        torch.testing.assert_close(grads[key], want_grads[key], atol=1e-10, rtol=1e-10, msg=key)


@CAUSAL
@pytest.mark.parametrize("name", ["dape-alibi", "dapev2-alibi", "dape-nope", "dapev2-rope"])
def test_evaluation_equals_naive_twin(name, causal):
    """No autograd: the in-place scores path, with and without query chunks."""
    torch.manual_seed(0)
    model = Encoder(3, 3, build_encoding(name, causal=causal)).double().eval()
    x = torch.randint(0, 3, (2, 9), generator=gen(14))
    with torch.no_grad():
        got = [model(x, 4, query_chunk=chunk) for chunk in (None, 5, 1)]
        model.encoding = ref.NaiveDAPE(model.encoding)
        want = model(x, 4)
    for out in got:
        torch.testing.assert_close(out, want, atol=1e-10, rtol=1e-10)


@CAUSAL
@pytest.mark.parametrize("name", ["dape-alibi", "dapev2-alibi"])
def test_full_encoding_matches_official_alibi_c(name, causal):
    """dape-alibi / dapev2-alibi scores vs AliBi_C / Alibi_DAPEV2 on q, k (j <= i if causal)."""
    torch.manual_seed(0)
    enc = build_encoding(name, causal=causal)
    q, k = (torch.randn(2, H, 12, 8, generator=gen(s)) for s in (9, 10))
    ctx = enc.prepare(LAYER, 12, CPU, None)
    got = enc.scores(LAYER, ctx, q, k)
    logits = q @ k.transpose(-1, -2) / 8**0.5
    bias = build_encoding("alibi", causal=causal).bias(LAYER, 12, CPU, None)
    mixer = enc.mixers[LAYER]
    if enc.version == 1:
        want = ref.official_v1(logits, bias, mixer.first, mixer.second, "concat_residual")
    else:
        want = ref.official_v2(logits, bias, mixer.first, mixer.second, causal)
    if causal:
        got, want = got.tril(), want.tril()
    torch.testing.assert_close(got, want, **TOL)


def test_causal_v2_keeps_hidden_values_right_of_the_diagonal():
    """Zeroing g's hidden layer for j > i changes the kept scores next to the diagonal."""
    enc = wrapped(2, causal=True)
    mixer = enc.mixers[LAYER]
    logits = torch.randn(1, H, 8, 8, generator=gen(11))
    bias = enc.base.bias(LAYER, 8, CPU, None)
    with torch.no_grad():
        x = torch.cat((logits, bias[None]), dim=1).tril()
        hidden = torch.nn.functional.leaky_relu(mixer.first(x), 0.01).tril()
        wrong = (logits + bias + mixer.second(hidden)).tril()
        right = production(enc, logits).tril()
    assert not torch.allclose(wrong, right, atol=1e-4)


# -- configuration, registry and parameter counts ------------------------------------------------
@pytest.mark.parametrize("kernel", [0, 2, 4, -1])
def test_even_or_nonpositive_kernel_raises(kernel):
    with pytest.raises(ConfigError, match="odd"):
        build_encoding("dapev2-alibi", options={"kernel": kernel})


def test_bad_forms_raise():
    with pytest.raises(ConfigError):
        build_encoding("dape-alibi", options={"form": "bogus"})
    with pytest.raises(ConfigError):
        DAPE(build_encoding("alibi"), form="no_bias")
    with pytest.raises(ConfigError):
        DAPE(build_encoding("nope"), form="concat")
    with pytest.raises(ConfigError):
        DAPE(build_encoding("alibi"), version=2, form="bias_only")
    with pytest.raises(ConfigError):
        DAPE(build_encoding("alibi"), version=3)


def test_generated_entries_are_listed_and_described():
    names = list_encodings("dape*")
    for base in ["alibi", "nope", "rope"]:
        assert {f"dape-{base}", f"dapev2-{base}"} <= set(names)
    bias_bases = [n for n in list_encodings() if get_encoding(n).has_bias and "dape" not in n]
    assert all(f"dape-{b}" in names and f"dapev2-{b}" in names for b in bias_bases)
    assert not [n for n in names if n.count("dape") > 1]  # never wrapped twice
    assert "relative" in list_encodings() and "dape-relative" not in names
    entry = get_encoding("dape-alibi")
    assert entry.description.startswith("DAPE V1 (MLP over [A‖B]) over alibi")
    assert set(get_encoding("dape-alibi").options) == {"hidden", "form"}
    assert set(get_encoding("dapev2-alibi").options) == {"hidden", "kernel"}
    assert set(get_encoding("dape-rope").options) == {"hidden"}
    enc = build_encoding("dapev2-alibi", options={"kernel": "5", "hidden": "16"})
    assert (enc.kernel, enc.hidden, enc.options) == (5, 16, {"hidden": 16, "kernel": 5})
    assert enc.mixers[0].first.weight.shape == (16, 2 * H, 1, 5)


def test_plugin_bias_encoding_gets_dape_variants():
    names = ("test-dape-plugin", "dape-test-dape-plugin", "dapev2-test-dape-plugin")
    try:

        @register_encoding("test-dape-plugin")
        class PluginBias(TableBias):
            """A test-time plugin bias with its own option."""

        assert set(names) <= set(list_encodings("*test-dape-plugin"))
        entry = get_encoding("dapev2-test-dape-plugin")
        assert set(entry.options) == {"size", "hidden", "kernel"}
        enc = build_encoding("dape-test-dape-plugin", options={"size": 12, "form": "concat"})
        assert isinstance(enc, DAPE) and isinstance(enc.base, PluginBias)
        assert enc.base.table.shape[-1] == 12 and enc.form == "concat"
        assert enc.base.options == {"size": 12} and enc.name == "dape-test-dape-plugin"
        model = Encoder(3, 3, build_encoding("dapev2-test-dape-plugin"))
        model(torch.randint(0, 3, (2, 6), generator=gen(12)), 3).sum().backward()
        assert enc.mixers[0].first.weight.shape[1] == 2 * H
    finally:
        for name in names:
            ENCODINGS.remove(name)
    assert not set(names) & set(list_encodings())


def test_bias_free_plugin_is_not_wrapped_and_rope_is_wrapped_lazily():
    try:
        register_encoding("test-dape-nobias")(type("NoBias", (Encoding,), {"__doc__": "x"}))
        assert "dape-test-dape-nobias" not in list_encodings()
    finally:
        ENCODINGS.remove("test-dape-nobias")
    rope = get_encoding("rope")
    for name in ("dape-rope", "dapev2-rope"):
        ENCODINGS.remove(name)
    ENCODINGS.add("rope", rope, replace=True)  # as if rope.py were imported after dape/
    assert {"dape-rope", "dapev2-rope"} <= set(list_encodings("dape*"))
    assert isinstance(build_encoding("dape-rope").base, type(build_encoding("rope")))


PER_LAYER = {  # V1: (2H·D + D) + (D·H + H) = 808; V2: K·(2H·D + D·H) + D + H
    ("dape-alibi", ()): 808,
    ("dape-nope", ()): 552,
    ("dape-alibi", (("form", "bias_only"),)): 552,
    ("dape-alibi", (("form", "add_residual"),)): 552,
    ("dape-alibi", (("form", "concat"),)): 808,
    ("dapev2-alibi", ()): 768 * 3 + 40,
    ("dapev2-alibi", (("kernel", 5),)): 768 * 5 + 40,
    ("dapev2-nope", ()): 512 * 3 + 40,
    ("dapev2-rope", ()): 512 * 3 + 40,
}


@pytest.mark.parametrize(("name", "options"), list(PER_LAYER))
def test_parameter_counts(name, options):
    enc = build_encoding(name, options=dict(options))
    base = build_encoding(name.split("-", 1)[1])
    assert count_parameters(enc.mixers[0]) == PER_LAYER[name, options]
    extra = count_parameters(Encoder(3, 3, enc)) - count_parameters(Encoder(3, 3, base))
    assert extra == 5 * PER_LAYER[name, options]
    totals = {"dape-alibi": 4040, "dape-nope": 2760, "dapev2-alibi": 11720, "dapev2-nope": 7880}
    if not options and name in totals:
        assert extra == totals[name]


def test_dape_kerple_duplicate_string_total():
    if "kerple" not in list_encodings():
        pytest.skip("kerple is not registered: cannot check the 253,162 total")
    assert count_parameters(Encoder(2, 2, build_encoding("dape-kerple"))) == 253_162


def test_wrapper_delegates_and_never_alters_the_base():
    base = build_encoding("alibi")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    enc = DAPE(base)
    assert enc.base is base and enc.has_bias and not enc.absolute and enc.dims == base.dims
    assert torch.equal(enc.bias(0, 6, CPU, None), base.bias(0, 6, CPU, None))
    assert enc.max_length == base.max_length
    assert base.state_dict().keys() == before.keys()
    assert not hasattr(base, "mixers") and type(base).scores is Encoding.scores


def test_flags_follow_the_base():
    """Set once, on the wrapper, from its base; V2 pads the row ends (not shift invariant)."""
    assert build_encoding("dape-alibi").shift_invariant
    assert not build_encoding("dapev2-alibi").shift_invariant
    for name in ("dape-rand-alibi", "dapev2-rand-alibi"):
        enc = build_encoding(name)
        assert enc.randomized and enc.has_bias and not enc.shift_invariant
    assert not build_encoding("dape-rope").has_bias
