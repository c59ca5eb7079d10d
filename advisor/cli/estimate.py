"""`advisor estimate` and `advisor models`: the estimator's doors."""

from __future__ import annotations

import click

from ..files import dumps_json
from ..units import fmt_bytes, fmt_count, fmt_ratio

METHOD_TITLES = {"full": "Full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}


@click.command("estimate")
@click.option("--model", "model", required=True, help="Catalog id (see `advisor models`), a config.json, or a model folder.")
@click.option("--method", type=click.Choice(["full", "lora", "qlora"]), default="lora", show_default=True)
@click.option("--rank", type=int, default=8, show_default=True, help="LoRA rank r.")
@click.option("--alpha", type=float, default=None, help="LoRA alpha (default 2 x rank); does not change memory.")
@click.option("--targets", default=None, help="Modules LoRA adapts: q_proj,v_proj or all-linear (default: PEFT's default for the model).")
@click.option("--batch", type=int, default=1, show_default=True, help="Micro-batch size per GPU.")
@click.option("--seq", type=int, default=512, show_default=True, help="Sequence length.")
@click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32", "mixed"]), default="bf16", show_default=True,
              help="mixed = fp32 weights with bf16 autocast.")
@click.option("--optimizer", type=click.Choice(["adamw", "adamw8bit", "sgd", "adafactor"]), default="adamw", show_default=True)
@click.option("--grad-checkpointing", is_flag=True, help="Recompute activations in backward.")
@click.option("--attention", type=click.Choice(["sdpa", "eager"]), default="sdpa", show_default=True)
@click.option("--gpus", type=int, default=1, show_default=True)
@click.option("--sharding", type=click.Choice(["none", "ddp", "zero2", "fsdp"]), default="none", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate for --method as JSON.")
def command(model, method, rank, alpha, targets, batch, seq, precision, optimizer, grad_checkpointing, attention,
            gpus, sharding, as_json):
    """Trainable parameters and per-GPU training memory: full fine-tuning vs LoRA vs QLoRA.

    Counts are exact (the real architecture built on the meta device, LoRA injected by
    PEFT); memory is the peak of tensor bytes in a training step, as
    torch.cuda.max_memory_allocated reports it, with CUDA context and allocator slack
    shown separately.
    """
    from ..estimate import compare_methods, estimate_training_memory, training_settings
    from ..specs import resolve_model_spec

    settings = training_settings(method=method, rank=rank, alpha=alpha, targets=targets, batch=batch, seq=seq,
                                 precision=precision, optimizer=optimizer, grad_checkpointing=grad_checkpointing,
                                 attention=attention, gpus=gpus, sharding=sharding)
    spec = resolve_model_spec(model)
    if as_json:
        click.echo(dumps_json(estimate_training_memory(spec, settings).model_dump(mode="json")), nl=False)
        return
    _print_comparison(compare_methods(spec, settings), focus=method)


def _print_comparison(estimates: dict, focus: str) -> None:
    from rich.console import Console
    from rich.table import Table

    full = estimates["full"]
    s = full.settings
    title = (f"{full.model} ({full.model_type}) · batch {s.batch} x seq {s.seq} · {s.precision} · {s.optimizer}"
             f"{' · grad checkpointing' if s.grad_checkpointing else ''} · {s.gpus} GPU{'s' if s.gpus > 1 else ''}"
             f"{'' if s.sharding == 'none' else ' · ' + s.sharding}")
    table = Table(title=title, title_justify="left")
    table.add_column("per GPU")
    for method, est in estimates.items():
        name = METHOD_TITLES[method] + (" *" if method == focus else "")
        table.add_column(name, justify="right")

    def row(label, values, style=None):
        table.add_row(label, *values, style=style)

    ests = list(estimates.values())
    row("trainable parameters", [fmt_count(e.trainable_params) for e in ests])
    row("share of the model", [f"{100 * e.trainable_fraction:.3g}%" for e in ests])
    for key, label in (("weights", "weights"), ("gradients", "gradients"), ("optimizer_states", "optimizer states"),
                       ("activations", "activations (saved for backward)"), ("logits_and_loss", "logits and loss buffers")):
        row(label, [fmt_bytes(e.sizes.get(key)) for e in ests])
    row("peak tensor memory", [fmt_bytes(e.peak_bytes) for e in ests], style="bold")
    row("  peak falls in", [e.peak_phase or "n/a" for e in ests])
    row("  + CUDA context and allocator slack", [fmt_bytes(e.total_needed_bytes()) for e in ests])
    row("memory saved vs full", [fmt_ratio(full.peak_bytes, e.peak_bytes) for e in ests])
    row("checkpoint written", [fmt_bytes(e.checkpoint_bytes) for e in ests])
    row("checkpoint vs full", [fmt_ratio(full.checkpoint_bytes, e.checkpoint_bytes) for e in ests])
    console = Console()
    console.print(table)
    focus_est = estimates[focus]
    for note in dict.fromkeys(n for e in ests for n in e.notes):
        console.print(f"[dim]note: {note}[/dim]")
    if focus_est.lora_targets:
        console.print(f"[dim]LoRA targets: {', '.join(focus_est.lora_targets)} (rank {s.rank})[/dim]")
    console.print("[dim]* the method asked for; `--json` prints its components and assumptions.[/dim]")


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def models_command(as_json):
    """The catalog of published model configs that `--model` accepts by id."""
    from ..specs import load_catalog

    catalog = load_catalog()
    if as_json:
        click.echo(dumps_json([
            {"id": e.id, "name": e.name, "model_type": e.config.get("model_type"), "task": e.task,
             "published_params": e.published_params, "source": e.source}
            for e in catalog.values()
        ]), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="advisor models: published configs shipped with advisor")
    for col in ("id", "name", "type", "params"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for e in catalog.values():
        table.add_row(e.id, e.name, e.config.get("model_type", ""), fmt_count(e.published_params))
    Console().print(table)
