"""TRL's fused LM head (`memory.trl_chunked_loss`, `--loss trl_chunked`) against the real TRL code.

TRL 1.16's SFTTrainer always patches the model with `trl.trainer.utils.add_fused_lm_head(model, outputs=("log_probs",
"entropy", "is_top1"))` and calls `model(**inputs, fused_lm_head=True)`. Here that real code runs on the CPU on a tiny
Llama built from a config: the head is added before PEFT wraps the model, as the patched forward asks, the loss is
SFTTrainer's (`-log_probs` summed over the label mask's count), and autograd's saved tensors and the live tensors of
the head's forward and of its backward node are measured (`LiveTensors` from tests/test_fused_loss.py: every storage
an op creates, from that op until it is freed; what CUDA's caching allocator counts for these ops).

The estimator models the CUDA path, where Triton is available. On the CPU, TRL takes its torch fallbacks, and what
differs is measured here, each part on its own, with TRL's own functions:

- the compact path (`hidden_states[mask]`, `labels[mask]`, `masked_scatter`) is the CUDA one; the CPU scores every
  position (`reshape`, `labels.clamp(min=0)`, `masked_fill(~mask, 0)`). With every position labelled both hold the
  same buffers, except that the CPU saves `~mask` once for each of log_probs and entropy where CUDA saves the one
  `mask` (indexing and both masked_scatters save that same tensor): one more bool per scored token saved on the CPU;
- Triton's kernels fold a tile into the statistics (forward) and overwrite it with its gradient (backward) in
  registers; `_forward_tile` and `_backward_tile` allocate tile-sized fp32 temporaries, whose peak is measured alone on
  a tile like the model's and added at the moment the kernel runs (the weight tile's cast, a temporary of the matmul,
  is already freed then);
- `_addmm_fp32` accumulates bf16/fp16 tiles into fp32 with cuBLAS's out_dtype on CUDA; on the CPU it casts both
  operands to fp32 first (measured alone, like the kernels' scratch; nothing in fp32).

Also outside the estimate: the losses' denominators, 0-d int64 tensors (the model's own loss and SFTTrainer's), which
autograd saves: counted apart and required to be exactly that.
"""

from __future__ import annotations

import contextlib

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("trl")

from trl.kernels.chunked_logprob import _addmm_fp32, _backward_tile, _forward_tile  # noqa: E402
from trl.trainer.utils import add_fused_lm_head  # noqa: E402

from advisor.estimate import TrainingSettings, estimate_training_memory  # noqa: E402
from advisor.estimate.architecture import describe  # noqa: E402
from advisor.estimate.memory import (  # noqa: E402
    activations,
    precision_of,
    step_memory,
    trl_chunked_loss,
)
from advisor.estimate.settings import TRL_TOKEN_TILE, TRL_VOCAB_TILE  # noqa: E402
from advisor.model_specs import ModelSpec  # noqa: E402
from tests.test_fused_loss import CONFIG, HIDDEN, VOCAB, LiveTensors  # noqa: E402

BATCH, SEQ = 2, 40  # 78 scored positions: one tile of tokens, one (2,048 of 32,768 wide) of the vocabulary
SFT_OUTPUTS = ("log_probs", "entropy", "is_top1")  # what SFTTrainer asks of add_fused_lm_head
SPEC = ModelSpec(
    spec="tiny", id="tiny", origin="config", task="causal-lm", model_type="llama", config=CONFIG, source="test"
)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


class Marked(LiveTensors):
    """LiveTensors whose peak can be restarted from the bytes live now (`mark`)."""

    def mark(self) -> int:
        self.live = {k: v for k, v in self.live.items() if not v[0].expired()}
        self.peak = sum(n for _, n in self.live.values())
        return self.peak


def _settings(method: str, precision: str, loss: str = "trl_chunked") -> TrainingSettings:
    targets = "all-linear" if method == "lora" else None
    return TrainingSettings(
        method=method, targets=targets, rank=4, precision=precision, batch=BATCH, seq=SEQ, loss=loss
    )


def _arch_act(settings: TrainingSettings):
    p = precision_of(settings)
    arch = describe(
        SPEC,
        method=settings.method,
        rank=4,
        alpha=8,
        targets=settings.targets,
        weights=p.weights,
        others=p.others,
    )
    return arch, activations(arch, settings)


def _scratch(compute_dtype, n: int, head_trains: bool, hidden_dtype) -> tuple[int, int]:
    """The CPU fallbacks' own temporaries, measured alone with TRL's functions on a tile like the model's (a view of a
    TRL_VOCAB_TILE-wide buffer): (forward kernel, backward: the larger of its kernel and of the fp32 accumulations)."""
    torch.manual_seed(1)
    tile = torch.randn(n, TRL_VOCAB_TILE).to(compute_dtype)[:, :VOCAB]
    targets = torch.randint(0, VOCAB, (n,))
    stats = [torch.zeros(n) for _ in range(7)]
    flags = dict(logit_scale=1.0, softcap=1.0, inv_t=1.0, HAS_SOFTCAP=False, BLOCK_SIZE=1024)
    with LiveTensors() as forward:
        _forward_tile(
            tile,
            tile.stride(0),
            targets,
            *stats,
            0,
            VOCAB,
            HAS_ENTROPY=True,
            HAS_LOG_SUM_SQ_PROBS=False,
            HAS_MEAN_LOGITS=False,
            HAS_IS_TOP1=True,
            **flags,
        )
    log_z, entropy, grad = torch.randn(n), torch.randn(n), torch.randn(n)
    with LiveTensors() as kernel:
        _backward_tile(
            tile, tile.stride(0), targets, log_z, entropy, grad, log_z, 0, VOCAB, HAS_LOGPROB_GRAD=True,
            HAS_ENTROPY_GRAD=False, **flags,
        )  # fmt: skip
    weight = torch.randn(VOCAB, HIDDEN).to(compute_dtype)
    hidden = torch.randn(n, HIDDEN).to(hidden_dtype).to(compute_dtype)
    with LiveTensors() as grad_hidden:
        _addmm_fp32(torch.zeros(n, HIDDEN), tile, weight)
    with LiveTensors() as grad_weight:
        if head_trains:
            _addmm_fp32(torch.zeros(VOCAB, HIDDEN), tile.t(), hidden)
    return forward.peak, max(kernel.peak, grad_hidden.peak, grad_weight.peak)


# method, precision: bf16 and fp32 weights without autocast; mixed: fp32 weights under bf16 autocast (the tiles in
# bf16, the hidden states and the head's weight cast to it)
CASES = [("lora", "bf16"), ("full", "bf16"), ("lora", "fp32"), ("full", "fp32"), ("lora", "mixed")]


@pytest.mark.parametrize("method,precision", CASES, ids=str)
def test_trl_fused_lm_head_saves_and_peaks_as_the_estimate_says(method, precision):
    from peft import get_peft_model

    from advisor.hf import build_config, lora_config

    settings = _settings(method, precision)
    arch, act = _arch_act(settings)
    head = trl_chunked_loss(arch, settings, act)
    n = BATCH * (SEQ - 1)
    assert head.tokens == n
    tokens = BATCH * SEQ
    assert "kv_cache" not in act.layers_per_token  # the patched forward runs the backbone with use_cache=False
    layers = sum(act.layers_per_token.values()) + sum(act.layers_fixed.values()) / tokens
    norm = sum(act.head_per_token.values()) - act.head_linear_per_token
    norm_fixed = sum(act.head_fixed.values()) - act.head_linear_fixed
    predicted_saved = tokens * (layers + norm) + norm_fixed + head.saved

    torch.manual_seed(0)
    config = build_config(SPEC)
    config._attn_implementation = "sdpa"
    dtype = torch.float32 if precision in ("fp32", "mixed") else torch.bfloat16
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    add_fused_lm_head(model, outputs=SFT_OUTPUTS)  # before PEFT, as SFTTrainer does (on the base model)
    if method == "lora":
        model = get_peft_model(model, lora_config(SPEC, rank=4, alpha=8, targets="all-linear"))
    base = model.get_base_model() if method == "lora" else model
    params = {t.untyped_storage().data_ptr() for t in model.parameters()}
    saved: dict[int, tuple[int, int]] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved.setdefault(storage.data_ptr(), (storage.nbytes(), t.dim()))
        return t

    live = Marked()
    at_backbone_end = {}

    def backbone_done(module, args, output):
        at_backbone_end["output"] = output.last_hidden_state.untyped_storage().nbytes()
        at_backbone_end["live"] = live.mark()

    base.model.register_forward_hook(backbone_done)
    ids = torch.randint(3, VOCAB, (BATCH, SEQ))
    casting = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "mixed" else contextlib.nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), casting, live:
        out = model(input_ids=ids, labels=ids, fused_lm_head=True)
        forward_peak = live.peak - at_backbone_end["live"]  # the head's, from the backbone's return on
        # SFTTrainer.compute_loss
        loss = (-out.log_probs).sum() / torch.as_tensor(out.label_mask.sum()).clamp(min=1)
    assert int(out.label_mask.sum()) == n and out.entropy is not None and out.is_top1 is not None
    del out

    scalars = [b for b, dim in saved.values() if dim == 0]
    assert scalars == [8, 8]  # the two losses' int64 denominators
    cpu_second_mask = n
    assert sum(b for b, dim in saved.values() if dim) == predicted_saved + cpu_second_mask

    compute = torch.bfloat16 if precision in ("bf16", "mixed") else torch.float32
    hidden_dtype = torch.float32 if precision in ("fp32", "mixed") else torch.bfloat16
    scratch_forward, scratch_backward = _scratch(compute, n, method == "full", hidden_dtype)
    weight_tile_cast = VOCAB * HIDDEN * 2 if precision == "mixed" else 0  # freed after its matmul
    assert at_backbone_end["output"] == head.backbone_output
    expected = max(head.forward_end, head.forward_loop, head.forward_loop - weight_tile_cast + scratch_forward)
    assert forward_peak == expected, (forward_peak, head.forward_loop, head.forward_end, scratch_forward)

    node, stack, seen = None, [loss.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        node = fn if type(fn).__name__ == "ChunkedLogProbFunctionBackward" else node
        stack += [f for f, _ in fn.next_functions]
    assert node is not None
    backward = {}
    node.register_prehook(lambda grads: backward.__setitem__("entry", live.mark()) and None)
    node.register_hook(lambda grads_in, grads_out: backward.__setitem__("peak", live.peak) and None)
    with live:
        loss.backward()
    incoming = 4 * n  # the log-probabilities' gradient, live at the node's entry, in the estimate's figures
    in_node = backward["peak"] - backward["entry"]
    expected = max(head.backward_end, head.backward_loop + scratch_backward) - incoming
    assert in_node == expected, (in_node, head.backward_loop, head.backward_end, scratch_backward)
    if method == "full":
        assert base.lm_head.weight.grad.untyped_storage().nbytes() == head.head_grad


def test_trl_fused_lm_head_computes_the_models_own_loss():
    """The head measured above is the loss SFTTrainer trains on: at temperature 1 it equals transformers' loss."""
    torch.manual_seed(0)
    from advisor.hf import build_config

    model = transformers.AutoModelForCausalLM.from_config(build_config(SPEC), dtype=torch.float32)
    add_fused_lm_head(model, outputs=SFT_OUTPUTS)
    ids = torch.randint(3, VOCAB, (BATCH, SEQ))
    fused = model(input_ids=ids, labels=ids, fused_lm_head=True).loss
    torch.testing.assert_close(fused, model(input_ids=ids, labels=ids).loss)


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_the_step_with_the_trl_head_holds_no_logits_and_no_cache(method):
    """The step's phases: the standard loss's logits, fp32 copies and log-softmax are gone; the head's buffers take
    their place in logits_and_loss; nothing is held for the next step (no logits, use_cache=False)."""
    precision = "bf16"
    trl = _settings(method, precision)
    standard = _settings(method, precision, loss="standard")
    arch, act = _arch_act(trl)
    head = trl_chunked_loss(arch, trl, act)
    mem = step_memory(arch, trl, act)
    est = estimate_training_memory(SPEC, trl)
    assert est.sizes["previous_step_outputs"] == 0
    assert est.sizes["logits_and_loss"] == max(head.forward_peak, head.saved + head.backward_loop)
    assert mem.phases["head_backward"] - mem.phases["loss_backward"] == head.backward_end - head.backward_loop
    assert est.peak_bytes == max(mem.phases.values())
    assert any("TRL" in a for a in est.assumptions)
    assert estimate_training_memory(SPEC, standard).sizes["previous_step_outputs"] > 0


def test_the_tiles_are_trls_own():
    """The tile sizes the estimate and the recipes quote are those of the installed TRL."""
    from trl.kernels.chunked_logprob import TOKEN_CHUNK_SIZE
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    assert (TRL_TOKEN_TILE, TRL_VOCAB_TILE) == (TOKEN_CHUNK_SIZE, _CHUNKED_LOGPROB_CHUNK_SIZE)
