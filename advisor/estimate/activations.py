"""What autograd keeps for backward: the saved activations of one layer, per token.

Each architecture's layer is written out below as the sequence of tensor operations
its transformers implementation performs, on symbolic tensors that carry a size per
token, a dtype and whether they require grad. Each operation saves exactly what its
autograd formula saves, and only when the gradient it serves is needed (PyTorch saves
`other` for `self * other` only if `self` requires grad). Views share storage, and a
storage saved twice is counted once, as the caching allocator sees it.

This is the mechanism, not a fit: LoRA's fp32 copies of each adapted layer's input,
autocast's bf16 copies of inputs and weights under mixed precision, the fp32 upcasts
inside RMSNorm, flash attention's log-sum-exp and eager attention's s x s matrices all
follow from the operations. `tests/test_activations.py` checks every block against
the tensors autograd really saves (`torch.autograd.graph.saved_tensors_hooks`) on
small configs of each family.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Literal

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int64": 8, "bool": 1}
Attention = Literal["flash", "eager"]

_storage_ids = itertools.count()


@dataclass(frozen=True)
class Tensor:
    """A symbolic activation: `elems` elements per token of `dtype`, on a storage of
    `storage_elems` elements (larger than `elems` for a view such as one third of a fused qkv)."""

    elems: float
    dtype: str
    requires_grad: bool
    storage: int = field(default_factory=lambda: next(_storage_ids))
    storage_elems: float | None = None

    @property
    def nbytes(self) -> float:
        """Bytes kept alive by holding this tensor: its whole storage."""
        return (self.storage_elems or self.elems) * DTYPE_BYTES[self.dtype]

    def view(self, elems: float) -> "Tensor":
        """A view (split, chunk, reshape) of the same storage."""
        return Tensor(elems, self.dtype, self.requires_grad, self.storage, self.storage_elems or self.elems)


@dataclass(frozen=True)
class LinearInfo:
    """One linear module of the real (meta-device) model."""

    in_features: int
    out_features: int
    trainable: bool  # its weight receives gradients
    adapted: bool  # LoRA wraps it
    weight_dtype: str  # dtype the weight is stored in


@dataclass(frozen=True)
class Precision:
    """How the step computes: the stored dtype, and autocast's when mixed."""

    weights: str  # dtype of the base weights: bf16, fp16, fp32 (nf4 linears under QLoRA)
    autocast: str | None = None  # bf16 under `--precision mixed` and QLoRA
    others: str | None = None  # dtype of embeddings and norms when it differs (fp32 under QLoRA)
    adapter: str = "fp32"  # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype=True)

    @property
    def norm_dtype(self) -> str:
        return self.others or self.weights

    @property
    def activations(self) -> str:
        return self.autocast or self.weights


@dataclass
class Dims:
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    batch: int
    seq: int
    rope_dim: int = 0  # elements of cos (and of sin) per position
    intermediate: int = 0  # MLP width where no linear module shows it (Mixtral's 3-D experts)


class Layer:
    """Records what one pass over a layer saves for backward, per token.

    `saved` is bytes per token by component; `fixed` is bytes independent of the
    tokens (autocast's copies of weights), also by component.
    """

    def __init__(
        self,
        linears: dict[str, LinearInfo],
        precision: Precision,
        dims: Dims,
        *,
        attention: Attention,
        rank: int,
        norms_trainable: bool,
        use_cache: bool,
        wrapped: dict[str, tuple[int, int]] | None = None,
    ):
        self.linears = linears
        self.wrapped = wrapped or {}  # parameters PEFT adapts in place: name -> (numel, adapter numel)
        self.use_cache = use_cache
        self.p = precision
        self.d = dims
        self.attention_impl = attention
        self.rank = rank
        self.norms_trainable = norms_trainable
        self.saved: dict[str, float] = defaultdict(float)
        self.held = 0.0  # bytes per token the output object keeps (KV cache)
        self.fixed: dict[str, float] = defaultdict(float)
        self._seen: set[int] = set()
        self.rope_saved = False

    # -- bookkeeping -------------------------------------------------------
    def save(self, t: Tensor, component: str) -> None:
        if t.storage not in self._seen:
            self._seen.add(t.storage)
            self.saved[component] += t.nbytes

    def new(self, elems: float, dtype: str, requires_grad: bool) -> Tensor:
        return Tensor(elems, dtype, requires_grad)

    def cast(self, x: Tensor, dtype: str) -> Tensor:
        return x if x.dtype == dtype else Tensor(x.elems, dtype, x.requires_grad)

    # -- operations --------------------------------------------------------
    def rms_norm(self, x: Tensor, style: Literal["llama", "gemma"] = "llama") -> Tensor:
        """LlamaRMSNorm: fp32 upcast, x * rsqrt(mean(x^2) + eps), then weight * x.to(input dtype).
        Gemma2RMSNorm: the same in fp32, times (1 + weight), then cast back."""
        grad = x.requires_grad or self.norms_trainable
        xf = self.cast(x, "fp32")
        if x.requires_grad:
            self.save(xf, "norms")  # pow(2) and the multiply by rsqrt both need it
            self.save(self.new(1, "fp32", True), "norms")  # rsqrt output, one per token
        normed = self.new(x.elems, "fp32", x.requires_grad)
        if style == "llama":
            scaled_in = self.cast(normed, x.dtype)
            if self.norms_trainable:
                self.save(scaled_in, "norms")  # weight's gradient needs its input
            return self.new(x.elems, _promote(self.p.norm_dtype, x.dtype), grad)
        if self.norms_trainable:
            self.save(normed, "norms")
        if x.requires_grad:
            self.fixed["norms"] += self.d.hidden * 4  # (1 + weight.float()), needed for the input's gradient
        return self.new(x.elems, x.dtype, grad)

    def module(self, name: str) -> LinearInfo:
        """The linear module called `name` in this layer (`q_proj` finds `self_attn.q_proj`)."""
        if name in self.linears:
            return self.linears[name]
        matches = [k for k in self.linears if k.endswith("." + name)]
        if len(matches) != 1:
            raise KeyError(f"layer has {len(matches)} modules named {name!r}: {sorted(self.linears)}")
        return self.linears[matches[0]]

    def linear(self, x: Tensor, name: str) -> Tensor:
        return self.linear_module(x, self.module(name))

    def linear_module(self, x: Tensor, info: LinearInfo) -> Tensor:
        if info.weight_dtype == "nf4":
            # bitsandbytes' Linear4bit: computes in bf16, returns the input's dtype, and saves
            # only the packed weight it already holds (its weight needs no gradient).
            out = self.new(info.out_features, x.dtype, True if info.adapted else x.requires_grad)
            if info.adapted:
                self._lora(x, info)
            return out
        compute = self.p.autocast or x.dtype
        x_in = self.cast(x, compute)
        weight_grad_needed = info.trainable
        if weight_grad_needed:
            self.save(x_in, "linear_inputs")
        if x.requires_grad and self.p.autocast and info.weight_dtype != self.p.autocast:
            # autocast's bf16 copy of the weight, saved for the input's gradient
            self.fixed["autocast_weight_copies"] += info.in_features * info.out_features * DTYPE_BYTES[self.p.autocast]
        out = self.new(info.out_features, compute, x.requires_grad or info.trainable)
        if info.adapted:
            self._lora(x, info)
            out = self.new(info.out_features, compute, True)
        return out

    def _lora(self, x: Tensor, info: LinearInfo) -> None:
        """PEFT's LoRA forward (lora_dropout 0, an Identity): x.to(adapter dtype) -> lora_A -> lora_B,
        scaled and added."""
        xa = self.cast(x, self.p.adapter)
        xa = self.cast(xa, self.p.autocast) if self.p.autocast else xa
        self.save(xa, "lora_inputs")  # lora_A's weight gradient needs its input
        a_out = self.new(self.rank, self.p.autocast or self.p.adapter, True)
        self.save(a_out, "lora_inputs")  # ... and lora_B's
        if self.p.autocast and self.p.autocast != self.p.adapter:
            # autocast's copies of the adapter weights, saved for their inputs' gradients
            copy = DTYPE_BYTES[self.p.autocast] * self.rank
            self.fixed["autocast_weight_copies"] += copy * info.out_features + (
                copy * info.in_features if x.requires_grad else 0
            )

    def rope(self, x: Tensor, cos_dtype: str) -> Tensor:
        """q * cos + rotate_half(q) * sin: saves cos and sin (shared by all layers)."""
        if x.requires_grad and not self.rope_saved:
            self.rope_saved = True  # cos/sin are (1, seq, dim): one copy per sequence position
            self.saved["rope"] += 2 * self.d.rope_dim * DTYPE_BYTES[cos_dtype] / self.d.batch
        out_dtype = "fp32" if "fp32" in (x.dtype, cos_dtype) else x.dtype
        return self.new(x.elems, out_dtype, x.requires_grad)

    def attention(self, q: Tensor, k: Tensor, v: Tensor, *, softcap: bool = False) -> Tensor:
        d = self.d
        grad = q.requires_grad or k.requires_grad or v.requires_grad
        if self.attention_impl == "flash":
            # SDPA's flash/efficient kernels save q, k, v (bf16 copies under autocast), out and the log-sum-exp.
            cq, ck, cv = (self.cast(t, self.p.autocast) if self.p.autocast else t for t in (q, k, v))
            out = self.new(d.heads * d.head_dim, cq.dtype, grad)
            if grad:
                for t in (cq, ck, cv, out):
                    self.save(t, "attention")
                self.save(self.new(d.heads, "fp32", True), "attention")
            return out
        return self._eager_attention(q, k, v, softcap=softcap)

    def _eager_attention(self, q: Tensor, k: Tensor, v: Tensor, *, softcap: bool) -> Tensor:
        """transformers' eager_attention_forward: repeat_kv, q @ k^T * scale, [softcap],
        + mask, softmax in fp32, cast back, @ v (attention dropout 0 in every family modelled).
        A matmul saves each operand only for the other's gradient."""
        d = self.d
        compute = self.p.autocast or q.dtype
        groups = d.heads // d.kv_heads
        k_r = k if groups == 1 else self.new(k.elems * groups, k.dtype, k.requires_grad)
        v_r = v if groups == 1 else self.new(v.elems * groups, v.dtype, v.requires_grad)
        qc, kc, vc = (self.cast(t, compute) for t in (q, k_r, v_r))
        scores = d.heads * d.seq  # elements per token: one row of the s x s matrix per head
        self._matmul_saves(qc, kc)
        grad = qc.requires_grad or kc.requires_grad
        if softcap:
            w = self.new(scores, compute, grad)  # tanh(scores / cap) saves its output; * cap follows
            if grad:
                self.save(w, "attention")
        probs32 = self.new(scores, "fp32", grad)  # softmax(..., dtype=float32) saves its output
        if grad:
            self.save(probs32, "attention")
        probs = self.cast(probs32, compute)
        self._matmul_saves(probs, vc)
        return self.new(d.heads * d.head_dim, compute, grad or vc.requires_grad)

    def _matmul_saves(self, a: Tensor, b: Tensor) -> None:
        if b.requires_grad:
            self.save(a, "attention")
        if a.requires_grad:
            self.save(b, "attention")

    def act(self, x: Tensor) -> Tensor:
        """SiLU / GELU (exact or tanh): saves the input."""
        if x.requires_grad:
            self.save(x, "mlp")
        return self.new(x.elems, x.dtype, x.requires_grad)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        if a.requires_grad:
            self.save(b, "mlp")
        if b.requires_grad:
            self.save(a, "mlp")
        dtype = "fp32" if "fp32" in (a.dtype, b.dtype) else a.dtype
        return self.new(max(a.elems, b.elems), dtype, a.requires_grad or b.requires_grad)

    def add(self, a: Tensor, b: Tensor) -> Tensor:
        return self.new(a.elems, _promote(a.dtype, b.dtype), a.requires_grad or b.requires_grad)

    def cached(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """DynamicCache.update concatenates onto an empty tensor: attention gets copies of k and v."""
        if not self.use_cache:
            return k, v
        return self.new(k.elems, k.dtype, k.requires_grad), self.new(v.elems, v.dtype, v.requires_grad)

    def contiguous(self, x: Tensor) -> Tensor:
        """A copy, as `.contiguous()` makes of a transposed tensor."""
        return self.new(x.elems, x.dtype, x.requires_grad)

    def hold(self, *tensors: Tensor) -> None:
        """Tensors the model's output keeps alive (the KV cache): through backward, where they
        count once with what autograd saved, and after it, until the next forward returns."""
        if self.use_cache:
            for t in tensors:
                self.held += t.nbytes
                self.save(t, "kv_cache")

    def split(self, x: Tensor, sizes: list[float]) -> list[Tensor]:
        return [x.view(s) for s in sizes]


# --------------------------------------------------------------------------
# Blocks: one function per family, mirroring its transformers implementation.
# Each takes the layer recorder and the residual-stream input; returns the output.
# --------------------------------------------------------------------------


def llama_block(L: Layer, x: Tensor) -> Tensor:
    """Llama, Mistral, Qwen2/2.5/3 without q/k norm: pre-norm, GQA attention, gated SiLU MLP."""
    h = L.rms_norm(x)
    q, k, v = (L.linear(h, n) for n in ("q_proj", "k_proj", "v_proj"))
    cos_dtype = x.dtype  # rotary cos/sin are cast to the hidden states' dtype
    q, k = L.rope(q, cos_dtype), L.rope(k, cos_dtype)
    k, v = L.cached(k, v)
    a = L.attention(q, k, v)
    L.hold(k, v)  # after attention: a tensor both saved and cached counts once, as saved
    x = L.add(x, L.linear(a, "o_proj"))
    h = L.rms_norm(x)
    x = L.add(x, _gated_mlp(L, h, fused=False))
    return x


def phi3_block(L: Layer, x: Tensor) -> Tensor:
    """Phi-3: fused qkv_proj and gate_up_proj, otherwise Llama-like."""
    d = L.d
    h = L.rms_norm(x)
    qkv = L.linear(h, "qkv_proj")
    q, k, v = L.split(qkv, [d.heads * d.head_dim, d.kv_heads * d.head_dim, d.kv_heads * d.head_dim])
    q, k = L.rope(q, x.dtype), L.rope(k, x.dtype)
    k, v = L.cached(k, v)
    a = L.attention(q, k, v)
    L.hold(k, v)  # after attention: a tensor both saved and cached counts once, as saved
    # q is a slice of the fused projection, so rotary's output is head-major, attention's
    # output follows q's layout, and transposing it back for o_proj makes a copy.
    x = L.add(x, L.linear(L.contiguous(a), "o_proj"))
    h = L.rms_norm(x)
    return L.add(x, _gated_mlp(L, h, fused=True))


def gemma2_block(L: Layer, x: Tensor) -> Tensor:
    """Gemma 2: sandwich norms (four per layer), (1 + weight) RMSNorm in fp32, eager
    attention with logit soft-capping, gated GELU-tanh MLP."""
    h = L.rms_norm(x, "gemma")
    q, k, v = (L.linear(h, n) for n in ("q_proj", "k_proj", "v_proj"))
    q, k = L.rope(q, x.dtype), L.rope(k, x.dtype)
    k, v = L.cached(k, v)
    a = L.attention(q, k, v, softcap=True)
    L.hold(k, v)
    a = L.rms_norm(L.linear(a, "o_proj"), "gemma")
    x = L.add(x, a)
    h = L.rms_norm(x, "gemma")
    m = L.rms_norm(_gated_mlp(L, h, fused=False), "gemma")
    return L.add(x, m)


def _promote(a: str, b: str) -> str:
    return "fp32" if "fp32" in (a, b) else a


def _gated_mlp(L: Layer, h: Tensor, *, fused: bool) -> Tensor:
    if fused:
        gu = L.linear(h, "gate_up_proj")
        gate, up = L.split(gu, [gu.elems / 2, gu.elems / 2])
    else:
        gate, up = L.linear(h, "gate_proj"), L.linear(h, "up_proj")
    return L.linear(L.mul(L.act(gate), up), "down_proj")


def mixtral_block(top_k: int, experts: int) -> Callable[[Layer, Tensor], Tensor]:
    """Mixtral: Llama attention, then a top-k router and experts stored as 3-D weights,
    run batched over the routed copies of the tokens (transformers' grouped experts,
    in the weights' dtype: autocast does not reach them). Each token is routed to
    `top_k` experts; every routed copy saves what a gated MLP saves, plus its routing
    weight and the index that scatters it back.

    PEFT adapts the router and the 3-D expert weights through parametrizations
    (`ParamWrapper`): the effective weight W + BA is rebuilt every forward and saved,
    as are the factors cast to the weights' dtype."""

    def block(L: Layer, x: Tensor) -> Tensor:
        d = L.d
        h = L.rms_norm(x)
        q, k, v = (L.linear(h, n) for n in ("q_proj", "k_proj", "v_proj"))
        q, k = L.rope(q, x.dtype), L.rope(k, x.dtype)
        k, v = L.cached(k, v)
        a = L.attention(q, k, v)
        L.hold(k, v)
        x = L.add(x, L.linear(a, "o_proj"))
        h = L.rms_norm(x)
        full = L.norms_trainable
        router_adapted = any(n.startswith("gate") for n in L.wrapped)
        experts_adapted = any(n.startswith("experts") for n in L.wrapped)
        # The router and the 3-D experts are parameters, not nn.Linear: bitsandbytes leaves them unquantised under
        # QLoRA, and prepare_model_for_kbit_training casts them to fp32 with the other unquantised weights.
        stored = L.p.norm_dtype if L.p.weights == "nf4" else L.p.weights
        router = LinearInfo(d.hidden, experts, trainable=full or router_adapted, adapted=False, weight_dtype=stored)
        L.linear_module(h, router)  # under autocast this also counts the bf16 copy of W + BA
        weights = DTYPE_BYTES[stored]
        factors_cast = stored != L.p.adapter
        for name, (numel, adapter_numel) in L.wrapped.items():
            if name.startswith("experts"):
                # baddbmm(W, B, A) in the weights' dtype saves its result and the cast factors
                L.fixed["lora_parametrizations"] += numel * weights + (adapter_numel * weights if factors_cast else 0)
            elif L.p.autocast:
                L.fixed["lora_parametrizations"] += adapter_numel * DTYPE_BYTES[L.p.autocast]  # B @ A under autocast
            else:
                L.fixed["lora_parametrizations"] += numel * weights  # W + BA, saved by the router's linear
        grad = h.requires_grad or full or router_adapted or experts_adapted
        if grad:
            # softmax(router logits) in fp32, top-k indices and values, their sum (renormalisation),
            # and the two index tensors that sort the routed copies by expert
            for elems, dtype in (
                (experts, "fp32"),
                (top_k, "int64"),
                (top_k, "fp32"),
                (1, "fp32"),
                (top_k, "int64"),
                (top_k, "int64"),
            ):
                L.save(Tensor(elems, dtype, False), "router")
            L.fixed["router"] += experts * 4  # tokens per expert (int32), once per forward
        e = h.dtype
        trained = full or experts_adapted
        routed = Tensor(top_k * d.hidden, e, grad)
        if trained:
            L.save(routed, "linear_inputs")
        gate_up = Tensor(top_k * 2 * d.intermediate, e, grad)
        gate, up = L.split(gate_up, [top_k * d.intermediate, top_k * d.intermediate])
        prod = L.mul(L.act(gate), up)
        if trained:
            L.save(prod, "linear_inputs")
        if grad:
            L.save(Tensor(top_k * d.hidden, e, True), "mlp")  # expert output, scaled by its routing weight
            L.save(Tensor(top_k, "fp32", False), "mlp")  # the routing weights
            L.save(Tensor(top_k, "int64", False), "mlp")  # index_add's index
        return L.add(x, Tensor(d.hidden, x.dtype, grad))

    return block


BLOCKS: dict[str, Callable[[Layer, Tensor], Tensor]] = {
    "llama": llama_block,
    "mistral": llama_block,
    "qwen2": llama_block,
    "phi3": phi3_block,
    "gemma2": gemma2_block,
}
