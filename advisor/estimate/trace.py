"""What a layer saves for backward, read off the real transformers module on the meta device.

The hand-written blocks in `activations.py` mirror a few families operation by operation.
For every other architecture transformers implements, this module runs the model
itself: built from the config on the meta device (no memory, no data), LoRA injected by
PEFT, in training mode, for the estimate's real batch and sequence length, inside
`torch.autograd.graph.saved_tensors_hooks`. Every tensor autograd keeps is seen with its
shape and dtype, counted once per storage (`untyped_storage()._cdata` identifies a
storage on the meta device as well), parameters excluded, and booked to the module that
was running when it was saved (embedding, a decoder layer's attention or MLP, the head).
Routing in transformers 5's mixture-of-experts layers (grouped or batched experts) has
shapes that do not depend on the data, so it runs on meta tensors too.

One thing the meta device cannot say is which attention kernel CUDA would pick. PyTorch's
`scaled_dot_product_attention` is replaced, for the trace only, by an emulation of
its CUDA dispatch (PyTorch's sdp_utils priority: flash, then memory-efficient, then
math; cuDNN attention is not chosen by default):
- flash: no attention mask, fp16/bf16, the same head size for q, k and v, at most 256;
  saves q, k, v (grouped-query k and v unrepeated), the output and an fp32 log-sum-exp
  per query and head;
- memory-efficient: otherwise, when q and k share a head size and there is no grouped
  query (fp32 included); saves q, k, v, the output, the log-sum-exp padded to 32 queries,
  and a boolean mask converted to the query's dtype with its key dimension padded to 16;
- math: the composite `_scaled_dot_product_attention_math` itself, traced like any module.
Dropout's random state (two scalars on the host) is not device memory. The emulation is
read from PyTorch's dispatch rules and checked on the CPU (`tests/test_traced.py`): flash
against the CPU flash kernel, the whole trace against autograd on real tensors.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

FLASH_MAX_HEAD_DIM = 256
EFFICIENT_LSE_BLOCK = 32  # the memory-efficient kernel's log-sum-exp is padded to blocks of 32 queries
EFFICIENT_BIAS_ALIGN = 16  # ... and its attention bias to a multiple of 16 keys

# Whose attention kernels a trace emulates: "cuda" for an estimate (a GPU's memory); "cpu" when the reference run
# compares the estimate with a measurement on the CPU (whose SDPA dispatch torch answers itself, see cpu_kernel).
KERNELS = ("cuda", "cpu")


@dataclass
class TracedActivations:
    """Saved-for-backward bytes of one forward at the estimate's batch x seq, by part of the model."""

    tokens: int
    embedding: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    layers: list[dict[str, int]] = field(default_factory=list)  # per decoder layer, by submodule
    head: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # final norm, LM head, soft-capping
    kv_cache: int = 0  # storages the returned cache holds beyond what autograd saved
    kv_cache_held: int = 0  # every storage the returned cache holds
    logits_dtype: str = "bf16"
    attention: str = "sdpa"
    kernels: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # attention calls by kernel
    kernel_device: str = "cuda"  # whose SDPA dispatch the kernels follow (KERNELS)

    @property
    def total(self) -> int:
        return sum(self.embedding.values()) + sum(sum(la.values()) for la in self.layers) + sum(self.head.values())


TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
_NAMES = {"torch.bfloat16": "bf16", "torch.float16": "fp16", "torch.float32": "fp32"}


def trace_activations(
    spec, *, method, rank, alpha, targets, precision, attention, batch, seq, use_cache, kernels: str = "cuda"
) -> TracedActivations:
    """Build the model for the trace and trace one forward with `kernels`' attention dispatch (cached per process,
    as `describe` is)."""
    import json

    from .architecture import _decoder_layers

    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, not {kernels!r}")
    key = (spec.model_dump_json(), method, rank, json.dumps(targets), precision, attention, batch, seq, use_cache)
    key += (kernels,)
    if key not in _TRACED:
        if len(_TRACED) >= 32:
            _TRACED.pop(next(iter(_TRACED)))
        model = build_traced_model(
            spec, method=method, rank=rank, alpha=alpha, targets=targets, precision=precision, attention=attention
        )
        try:
            _TRACED[key] = trace_saved(
                model, _decoder_layers(model), batch=batch, seq=seq, use_cache=use_cache, kernels=kernels
            )
        except Exception as exc:  # noqa: BLE001 - whatever the module raises, the estimate says it and moves on
            from .memory import UnsupportedArchitecture

            raise UnsupportedArchitecture(
                spec.model_type,
                f"transformers' {spec.model_type} module fails in a training forward with these settings "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            ) from exc
    return _TRACED[key]


_TRACED: dict[tuple, TracedActivations] = {}


def build_traced_model(spec, *, method: str, rank: int, alpha: float, targets, precision: str, attention: str):
    """The model as the trace runs it: meta device, `precision`'s dtype, PEFT's LoRA, training mode."""
    import torch

    from ..hf import build_config, build_meta_model, inject_lora

    config = build_config(spec)
    if attention == "eager":
        config._attn_implementation = "eager"
    model = build_meta_model(spec, config, dtype=getattr(torch, TORCH_DTYPES[precision]))
    if method == "lora":
        with torch.device("meta"):
            model = inject_lora(model, spec, rank=rank, alpha=alpha, targets=targets, init=False)
    model.train()
    return model


def trace_saved(model, layers, *, batch: int, seq: int, use_cache: bool, kernels: str = "cuda") -> TracedActivations:
    """Run `model` on (batch, seq) token ids on the model's device and book what autograd saves, attention
    dispatched as `kernels` ("cuda" or "cpu") would.

    `layers` is the model's list of decoder layers. Works on meta and on real tensors alike (the
    tests run it on real ones on the CPU)."""
    import torch

    from ..hf import returned_cache

    device = next(model.parameters()).device
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    buffers = {b.untyped_storage()._cdata for b in model.buffers()}
    traced = TracedActivations(tokens=batch * seq, kernel_device=kernels)
    layer_of = {id(layer): i for i, layer in enumerate(layers)}
    traced.layers = [defaultdict(int) for _ in layers]
    state = {"where": "embedding", "layer": None, "part": None}
    seen: set[int] = set()
    keep = []  # hold every saved tensor so no storage is freed and its address reused during the trace

    def pack(t):
        storage = t.untyped_storage()
        key = storage._cdata
        if key not in params and key not in buffers and key not in seen:
            seen.add(key)
            keep.append(t)
            nbytes = storage.nbytes()
            if state["where"] == "layer":
                traced.layers[state["layer"]][state["part"] or "other"] += nbytes
            elif state["where"] == "head":
                traced.head[state["part"] or "head"] += nbytes
            else:
                traced.embedding["embedding"] += nbytes
        return t

    handles = []

    def enter_layer(module, args):
        state.update(where="layer", layer=layer_of[id(module)], part=None)

    def leave_layer(module, args, output):
        state.update(where="head", layer=None, part=None)

    for layer in layers:
        handles.append(layer.register_forward_pre_hook(enter_layer))
        handles.append(layer.register_forward_hook(leave_layer))
        for name, child in layer.named_children():
            handles.append(child.register_forward_pre_hook(_set_part(state, _part_name(name))))
            handles.append(child.register_forward_hook(_set_part(state, None, post=True)))
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:
        handles.append(head.register_forward_pre_hook(_set_part(state, "lm_head")))
    ids = torch.zeros((batch, seq), dtype=torch.long, device=device)
    # transformers looks for padding in the ids to warn about a missing attention mask: a read of the data, which
    # meta tensors have not. The warning is all it does.
    for m in model.modules():
        if hasattr(m, "warn_if_padding_and_no_attention_mask"):
            m.warn_if_padding_and_no_attention_mask = _no_warning
    try:
        with (
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            cuda_attention(traced, kernels),
            _one_sequence(),
            _meta_autocast(),
        ):
            out = model(input_ids=ids, use_cache=use_cache)
    finally:
        for h in handles:
            h.remove()
    logits = out.logits
    traced.logits_dtype = _NAMES.get(str(logits.dtype), "fp32")
    cache = returned_cache(out)
    for t in _cache_tensors(cache):
        key = t.untyped_storage()._cdata
        traced.kv_cache_held += t.untyped_storage().nbytes()
        if key not in seen:
            seen.add(key)
            traced.kv_cache += t.untyped_storage().nbytes()
    traced.attention = str(getattr(model.config, "_attn_implementation", None) or "sdpa")
    keep.clear()
    return traced


@contextmanager
def _one_sequence():
    """Without a cache, transformers looks for sequences packed into one row by reading the position ids, which meta
    tensors cannot give. The trace's rows are one sequence each (positions 0..seq-1), for which the answer is None."""
    from transformers import masking_utils

    original = masking_utils.find_packed_sequence_indices
    masking_utils.find_packed_sequence_indices = lambda position_ids: None
    try:
        yield
    finally:
        masking_utils.find_packed_sequence_indices = original


@contextmanager
def _meta_autocast():
    """PEFT's LoRA on parameters (the experts' 3-D weights `all-linear` reaches through target_parameters) turns
    autocast off around its weight with `torch.autocast(device_type=W.device.type, enabled=False)`, which torch
    refuses for "meta". Off is off on any device: the trace asks it of the CPU's autocast instead."""
    import torch

    original = torch.autocast

    class autocast(original):
        def __init__(self, device_type, *args, **kwargs):
            super().__init__("cpu" if device_type == "meta" else device_type, *args, **kwargs)

    torch.autocast = autocast
    try:
        yield
    finally:
        torch.autocast = original


def _no_warning(*args, **kwargs):
    return None


def _set_part(state, part, post=False):
    def hook(module, *args):
        if state["where"] == "layer" or part == "lm_head":
            state["part"] = part
            if part == "lm_head":
                state["where"] = "head"

    return hook


def _part_name(name: str) -> str:
    """A decoder layer's child as a component: attention, mlp (experts and routers included), norms."""
    low = name.lower()
    if "attn" in low or "attention" in low:
        return "attention"
    if "norm" in low or low.startswith("ln"):
        return "norms"
    if "mlp" in low or "moe" in low or "expert" in low or "feed_forward" in low or "ffn" in low:
        return "mlp"
    return low


def _cache_tensors(cache):
    if cache is None:
        return []
    out = []
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values", "compressed_kv", "k_pe"):
            t = getattr(layer, name, None)
            if t is not None and hasattr(t, "untyped_storage") and t.numel():
                out.append(t)
    return out


@contextmanager
def cuda_attention(traced: TracedActivations | None = None, kernels: str = "cuda"):
    """`scaled_dot_product_attention` as CUDA (or, with kernels="cpu", the CPU) would dispatch it, for the duration
    of a trace; with kernels="cpu", LayerNorm's statistics kept as the CPU's kernel keeps them."""
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def emulated(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if kernels == "cpu":
            kernel = cpu_kernel(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa)
        else:
            kernel = cuda_kernel(query, key, value, attn_mask, enable_gqa)
        if traced is not None:
            traced.kernels[kernel] += 1
        if kernel == "math":
            import torch

            return torch.ops.aten._scaled_dot_product_attention_math(
                query, key, value, attn_mask, dropout_p, is_causal, None, scale=scale, enable_gqa=enable_gqa
            )[0]
        return _kernel_function().apply(query, key, value, attn_mask, kernel)

    F.scaled_dot_product_attention = emulated
    original_layer_norm = F.layer_norm
    if kernels == "cpu":
        F.layer_norm = _cpu_layer_norm
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
        F.layer_norm = original_layer_norm


def _cpu_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """LayerNorm as the CPU's kernel saves it: its mean and 1/std in the input's dtype (CUDA's kernel, and the meta
    function the trace otherwise runs, keep them in fp32 for bf16 and fp16 inputs)."""
    return _layer_norm_function().apply(input, tuple(normalized_shape), weight, bias, eps)


@cache
def _layer_norm_function():
    import torch

    class CpuLayerNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input, normalized_shape, weight, bias, eps):
            out = torch.ops.aten.native_layer_norm(input, list(normalized_shape), weight, bias, eps)[0]
            stats = (*input.shape[: input.dim() - len(normalized_shape)], *([1] * len(normalized_shape)))
            mean = torch.empty(stats, dtype=input.dtype, device=input.device)
            rstd = torch.empty(stats, dtype=input.dtype, device=input.device)
            ctx.save_for_backward(input, weight, bias, mean, rstd)
            return out

        @staticmethod
        def backward(ctx, grad):  # pragma: no cover - traces never run backward
            raise RuntimeError("the emulated LayerNorm is for tracing what is saved, not for training")

    return CpuLayerNorm


def cuda_kernel(query, key, value, attn_mask, enable_gqa: bool) -> str:
    """The kernel PyTorch's CUDA dispatch picks for these inputs (flash, efficient or math)."""
    import torch

    low = query.dtype in (torch.float16, torch.bfloat16)
    same_dims = query.shape[-1] == key.shape[-1] == value.shape[-1]
    if attn_mask is None and low and same_dims and query.shape[-1] <= FLASH_MAX_HEAD_DIM:
        return "flash"
    align = 8 if low else 4
    gqa = enable_gqa and query.shape[-3] != key.shape[-3]
    if query.shape[-1] == key.shape[-1] and not gqa and query.shape[-1] % align == 0 and value.shape[-1] % align == 0:
        return "efficient"
    return "math"


def cpu_kernel(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa) -> str:
    """The kernel the CPU's SDPA picks, asked of torch itself with two-token tensors of the same heads, head sizes,
    dtype, mask, dropout and causality: its flash kernel ("cpu-flash") or the math path."""
    import torch

    def tiny(t, tokens=2):
        return torch.zeros((1, t.shape[-3], tokens, t.shape[-1]), dtype=t.dtype)

    mask = None if attn_mask is None else torch.ones((1, 1, 2, 2), dtype=attn_mask.dtype)
    choice = torch._fused_sdp_choice(
        tiny(query), tiny(key), tiny(value), mask, dropout_p, is_causal, scale=None, enable_gqa=enable_gqa
    )
    return "cpu-flash" if int(choice) == int(torch.nn.attention.SDPBackend.FLASH_ATTENTION) else "math"


@cache
def _kernel_function():
    """An autograd Function that saves what the flash or memory-efficient CUDA kernel saves (it computes zeros:
    the trace needs the saved tensors' sizes, never their values, and is never run backward)."""
    import torch

    class FusedAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, query, key, value, attn_mask, kernel):
            b, h, s = query.shape[0], query.shape[-3], query.shape[-2]
            dv = value.shape[-1]
            # the kernels write (batch, seq, heads, dim) and return it transposed
            out = torch.zeros((b, s, h, dv), dtype=query.dtype, device=query.device).transpose(1, 2)
            lse_len = s if kernel in ("flash", "cpu-flash") else -(-s // EFFICIENT_LSE_BLOCK) * EFFICIENT_LSE_BLOCK
            lse = torch.zeros((b, h, lse_len), dtype=torch.float32, device=query.device)
            saved = [query, key, value, out, lse]
            if attn_mask is not None and kernel == "cpu-flash":
                # the CPU flash kernel keeps a boolean mask converted to the query's dtype, unpadded
                bias = attn_mask
                if attn_mask.dtype == torch.bool:
                    bias = torch.zeros(attn_mask.shape, dtype=query.dtype, device=query.device)
                saved.append(bias)
            elif attn_mask is not None:
                saved.append(_efficient_bias(attn_mask, query))
            ctx.save_for_backward(*saved)
            return out

        @staticmethod
        def backward(ctx, grad):  # pragma: no cover - traces never run backward
            raise RuntimeError("the emulated attention kernel is for tracing what is saved, not for training")

    return FusedAttention


def _efficient_bias(mask, query):
    """SDPA's preprocessing for the memory-efficient kernel: a boolean mask becomes a tensor of the query's dtype
    (0 or -inf) of the mask's shape, its last dimension padded to a multiple of 16; a float mask already aligned is
    used as it is."""
    import torch

    keys = mask.shape[-1]
    padded = -(-keys // EFFICIENT_BIAS_ALIGN) * EFFICIENT_BIAS_ALIGN
    if mask.dtype != torch.bool and padded == keys:
        return mask
    shape = (*mask.shape[:-1], padded)
    return torch.zeros(shape, dtype=query.dtype, device=query.device)[..., :keys]
