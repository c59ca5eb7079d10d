"""`advisor estimate` and `advisor models`: the estimator's doors."""

from __future__ import annotations

import click

from ..estimate.settings import LOSS_LABELS, METHOD_LABELS
from ..files import dumps_json
from ..fmt import MISSING, fmt_bytes, fmt_count, fmt_pct, fmt_ratio
from .settings_options import settings_values, training_options


@click.command("estimate")
@click.option(
    "--model", "model", required=True, help="Catalog id (see `advisor models`), a config.json, or a model folder."
)
@training_options()
@click.option("--json", "as_json", is_flag=True, help="Print the estimate for --method as JSON.")
def command(model: str, as_json: bool, **values) -> None:
    """Trainable parameters and per-GPU training memory: full fine-tuning vs LoRA vs QLoRA.

    Counts are exact (the real architecture built on the meta device, LoRA injected by
    PEFT); memory is the peak of tensor bytes in a training step, as
    torch.cuda.max_memory_allocated reports it, with CUDA context and allocator slack
    shown separately.
    """
    from ..estimate import compare_methods, estimate_training_memory, training_settings
    from ..model_specs import resolve_model_spec

    settings = training_settings(**settings_values(values))
    spec = resolve_model_spec(model)
    if as_json:
        click.echo(dumps_json(estimate_training_memory(spec, settings).model_dump(mode="json")), nl=False)
        return
    _print_comparison(compare_methods(spec, settings), focus=settings.method)


def _print_comparison(estimates: dict, focus: str) -> None:
    from rich.console import Console
    from rich.table import Table

    full = estimates["full"]
    s = full.settings
    title = (
        f"{full.model} ({full.model_type}) · batch {s.batch} x seq {s.seq} · {s.precision} · {s.optimizer}"
        f"{' · grad checkpointing' if s.grad_checkpointing else ''}"
        f"{' · ' + LOSS_LABELS[s.loss] if LOSS_LABELS[s.loss] else ''}"
        f" · {s.gpus} GPU{'s' if s.gpus > 1 else ''}"
        f"{'' if s.sharding == 'none' else ' · ' + s.sharding}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("per GPU")
    for method in estimates:
        name = METHOD_LABELS[method] + (" *" if method == focus else "")
        table.add_column(name, justify="right")

    def row(label, values, style=None):
        table.add_row(label, *values, style=style)

    ests = list(estimates.values())
    row("trainable parameters", [fmt_count(e.trainable_params) for e in ests])
    row("share of the model", [fmt_pct(e.trainable_fraction, 3) for e in ests])
    for key, label in (
        ("weights", "weights"),
        ("gradients", "gradients"),
        ("optimizer_states", "optimizer states"),
        ("activations", "activations (saved for backward)"),
        ("logits_and_loss", "logits and loss buffers"),
    ):
        row(label, [fmt_bytes(e.sizes.get(key)) for e in ests])
    row("peak tensor memory", [fmt_bytes(e.peak_bytes) for e in ests], style="bold")
    row(
        "  activations basis",
        [
            (e.activation_basis or MISSING) + (f" ({e.attention_kernels.upper()})" if e.attention_kernels else "")
            for e in ests
        ],
    )
    row("  peak falls in", [e.peak_phase or MISSING for e in ests])
    row("  + CUDA context and allocator slack", [fmt_bytes(e.total_needed_bytes()) for e in ests])
    row("memory saved vs full", [fmt_ratio(_times(full.peak_bytes, e.peak_bytes)) for e in ests])
    row("checkpoint written", [fmt_bytes(e.checkpoint_bytes) for e in ests])
    row("checkpoint vs full", [fmt_ratio(_times(full.checkpoint_bytes, e.checkpoint_bytes)) for e in ests])
    console = Console()
    console.print(table)
    focus_est = estimates[focus]
    basis = {
        "catalog": "the catalog entry",
        "architectures": "the config's architectures",
        "model_type": f"no architectures key: {full.model_type}'s task in transformers",
    }[full.task_from]
    console.print(f"[dim]built as {full.auto_class} ({basis})[/dim]")
    for warning in dict.fromkeys(w for e in ests for w in e.warnings):
        console.print(f"[yellow]warning: {warning}[/yellow]")
    for note in dict.fromkeys(n for e in ests for n in e.notes):
        console.print(f"[dim]note: {note}[/dim]")
    if focus_est.lora_targets:
        console.print(f"[dim]LoRA targets: {', '.join(focus_est.lora_targets)} (rank {s.rank})[/dim]")
    console.print("[dim]* the method asked for; `--json` prints its components and assumptions.[/dim]")


def _times(a: float | None, b: float | None) -> float | None:
    """How many times `b` goes into `a`; None when either is missing."""
    return a / b if a and b else None


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def models_command(as_json):
    """The catalog of published model configs that `--model` accepts by id."""
    from ..model_specs import load_catalog

    catalog = load_catalog()
    if as_json:
        click.echo(
            dumps_json(
                [
                    {
                        "id": e.id,
                        "name": e.name,
                        "model_type": e.config.get("model_type"),
                        "task": e.task,
                        "published_params": e.published_params,
                        "source": e.source,
                    }
                    for e in catalog.values()
                ]
            ),
            nl=False,
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="advisor models: published configs shipped with advisor")
    for col in ("id", "name", "type", "params"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for e in catalog.values():
        table.add_row(e.id, e.name, e.config.get("model_type", ""), fmt_count(e.published_params))
    Console().print(table)
