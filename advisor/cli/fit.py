"""`advisor fit`: the recipe that fits named GPUs for each method, its headroom, time and cost."""

from __future__ import annotations

import click

from ..estimate.settings import LOSS_LABELS, METHOD_LABELS
from ..files import dumps_json
from ..fmt import MISSING, fmt_bytes, fmt_int, fmt_number
from ..plan.recipe import FORMATS

EXIT_NOTHING_FITS = 3


def gpu_options(command):
    """--gpu NAME | --gpu-memory-gib N, --gpus N: the hardware, as `advisor fit` and `advisor recipe` take it."""
    for option in reversed(
        [
            click.option(
                "--gpu", help="A GPU from the hardware catalog (see `advisor gpus`), e.g. h100-sxm, rtx-4090."
            ),
            click.option("--gpu-memory-gib", type=float, help="Memory per GPU in GiB, instead of --gpu (0: CPU only)."),
            click.option("--gpus", type=int, default=1, show_default=True, help="Number of GPUs."),
        ]
    ):
        command = option(command)
    return command


@click.command("fit")
@click.option("--model", required=True, help="Catalog id (see `advisor models`), a config.json, or a model folder.")
@gpu_options
@click.option("--seq", type=int, help="Sequence length in tokens (default 1,024).")
@click.option("--batch", type=int, help="Micro-batch per GPU to start from (default 1).")
@click.option("--effective-batch", type=int, help="Sequences per optimizer step to reach with gradient accumulation.")
@click.option("--method", type=click.Choice(["full", "lora", "qlora"]), help="Search one method only.")
@click.option("--examples", type=int, help="Training examples, for time and cost.")
@click.option("--mean-tokens", type=int, help="Mean tokens per example, for time and cost.")
@click.option("--epochs", type=float, default=None, help="Epochs, for time and cost (default 3, as TrainingArguments).")
@click.option("--price-per-hour", type=float, help="USD per GPU-hour, instead of the catalog's indicative price.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Plan for this framework's loss, as `advisor recipe --format` does (trl: TRL's fused LM head, which its "
    "SFTTrainer always runs); default: the standard and the fused loss.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the fit search as JSON.")
def command(
    model,
    gpu,
    gpu_memory_gib,
    gpus,
    seq,
    batch,
    effective_batch,
    method,
    examples,
    mean_tokens,
    epochs,
    price_per_hour,
    fmt,
    as_json,
):
    """The recipe that fits for full fine-tuning, LoRA and QLoRA, searching micro-batch, gradient
    checkpointing, optimizer, sharding and (last) sequence length.

    Exit 0 when a recipe fits, 3 when none does (so `advisor fit ... && launch` gates a job), 2 for bad input.
    """
    from ..plan.fit import fit_training
    from ..plan.timing import tokens_to_train

    tokens = tokens_to_train(examples, mean_tokens, epochs)
    result = fit_training(
        model,
        gpu=gpu,
        gpu_memory_gib=gpu_memory_gib,
        gpus=gpus,
        seq=seq,
        batch=batch,
        effective_batch=effective_batch,
        methods=[method] if method else None,
        tokens=tokens,
        price_usd_per_hour=price_per_hour,
        recipe_format=fmt,
    )
    if as_json:
        click.echo(dumps_json(result.model_dump(mode="json")), nl=False)
    else:
        print_fit(result)
    return 0 if result.best else EXIT_NOTHING_FITS


def print_fit(result) -> None:
    from rich.console import Console
    from rich.table import Table

    where = result.gpu_name or f"{result.gpu_memory_gib:g} GiB"
    table = Table(
        title=f"advisor fit: {result.model} on {result.gpus} x {where}", title_justify="left", show_lines=True
    )
    for col in ("method", "fits", "recipe", "per GPU", "max batch", "max seq", "accumulation", "time", "cost"):
        table.add_column(col, justify="right" if col in ("per GPU", "max batch", "max seq", "accumulation") else "left")
    for o in result.options:
        s = o.settings
        recipe = (
            f"batch {s.batch} x {s.seq}, {s.optimizer}"
            f"{', checkpointing' if s.grad_checkpointing else ''}"
            f"{', ' + LOSS_LABELS[s.loss] if LOSS_LABELS[s.loss] else ''}"
            f"{'' if s.sharding == 'none' else ', ' + s.sharding}"
        )
        t = o.time
        table.add_row(
            METHOD_LABELS[o.method] + (" *" if o.method == result.best else ""),
            o.headroom.replace("_", " "),
            recipe,
            f"{fmt_bytes(o.needed_bytes)} of {fmt_bytes(o.budget_bytes)}",
            # nothing fits: no largest batch or sequence, no accumulation to speak of
            fmt_int(o.max_micro_batch if o.fits else None),
            fmt_int(o.max_seq if o.fits else None),
            fmt_int(o.grad_accumulation if o.fits else None),
            _hours(t),
            MISSING if t is None or t.cost_usd is None else f"${fmt_number(t.cost_usd)}",
        )
    console = Console()
    console.print(table)
    for o in result.options:
        for c in o.changes if o.fits else []:
            console.print(f"{METHOD_LABELS[o.method]}: {c.field} {c.asked} -> {c.chosen}: {c.why}")
        label = METHOD_LABELS[o.method]
        for note in o.notes:  # a note may already open with the method's name
            console.print(f"[dim]{note if note.startswith(label) else f'{label}: {note}'}[/dim]")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")
    console.print(
        "[dim]* recommended. Headroom: comfortable up to "
        f"{result.headroom_policy['comfortable_max']:.0%} of memory, tight up to "
        f"{result.headroom_policy['tight_max']:.0%}. Replay a recipe with `advisor estimate`; `--json` for all fields."
        "[/dim]"
    )
    if result.time_calibration:
        c = result.time_calibration
        console.print(
            f"[dim]time: FLOPs at {c['utilisation']:.0%} of dense bf16 peak, calibrated on {c['calibration_rows']} "
            f"measured H200 steps (median error {c['calibration_error_median']:.0%}, worst "
            f"{c['calibration_error_min']:+.0%} / {c['calibration_error_max']:+.0%}); ranges shown[/dim]"
        )


def _hours(t) -> str:
    if t is None or t.hours is None:
        return MISSING
    return f"{fmt_number(t.hours)} h ({fmt_number(t.hours_low)}-{fmt_number(t.hours_high)})"


@click.command("gpus")
@click.option("--json", "as_json", is_flag=True, help="Print the hardware catalog as JSON.")
def gpus_command(as_json):
    """The hardware catalog that `--gpu` accepts: memory, bf16 throughput, bandwidth, indicative price."""
    from ..plan.hardware import load_hardware

    devices = load_hardware()
    if as_json:
        click.echo(dumps_json([d.model_dump(mode="json") for d in devices.values()]), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="advisor gpus: the hardware catalog (prices indicative; --price-per-hour overrides)")
    for col in ("id", "name", "memory GiB", "bf16 TFLOPS", "GB/s", "USD/h"):
        table.add_column(col, justify="left" if col in ("id", "name") else "right")
    for d in devices.values():
        table.add_row(
            d.id,
            d.name,
            f"{d.memory_gib:g}",
            fmt_number(d.tensor_tflops),
            fmt_number(d.bandwidth_gbs),
            fmt_number(d.price_usd_per_hour),
        )
    Console().print(table)


@click.command("recipe")
@click.option("--model", required=True, help="Catalog id (see `advisor models`), a config.json, or a model folder.")
@gpu_options
@click.option("--method", type=click.Choice(["full", "lora", "qlora"]), help="The method (default: the fit's best).")
@click.option("--seq", type=int, help="Sequence length in tokens (default 1,024).")
@click.option("--batch", type=int, help="Micro-batch per GPU to start from (default 1).")
@click.option("--effective-batch", type=int, help="Sequences per optimizer step to reach with gradient accumulation.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write the file here instead of printing it.")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("--json", "as_json", is_flag=True, help="Print the recipe (file, launch command, settings) as JSON.")
def recipe_command(model, gpu, gpu_memory_gib, gpus, method, seq, batch, effective_batch, fmt, output, force, as_json):
    """The fit search's recipe as a file a team can launch: a TRL SFTTrainer script, an axolotl YAML or a
    LLaMA-Factory YAML. Exit 3 when no recipe fits."""
    from ..files import ensure_writable, write_atomic
    from ..model_specs import resolve_model_spec
    from ..plan.fit import fit_training
    from ..plan.recipe import model_reference, write_recipe

    if output:
        ensure_writable(output, force=force, field="--output")
    spec = resolve_model_spec(model)
    fit = fit_training(
        spec,
        gpu=gpu,
        gpu_memory_gib=gpu_memory_gib,
        gpus=gpus,
        seq=seq,
        batch=batch,
        effective_batch=effective_batch,
        methods=[method] if method else None,
        recipe_format=fmt,
    )
    chosen = fit.to_write(method)
    if chosen is None:
        message = f"no {method or ''} recipe fits {fit.gpus} x {fit.gpu_name or f'{fit.gpu_memory_gib:g} GiB'}"
        if as_json:
            click.echo(dumps_json({"fits": False, "message": message, "fit": fit.model_dump(mode="json")}), nl=False)
        else:
            click.echo(f"{message}; `advisor fit --format {fmt}` shows what each method needs", err=True)
        return EXIT_NOTHING_FITS
    recipe = write_recipe(model_reference(spec), chosen.settings, grad_accumulation=chosen.grad_accumulation, fmt=fmt)
    if output:
        write_atomic(output, recipe.content, force=force, field="--output")
    if as_json:
        click.echo(dumps_json({**recipe.model_dump(mode="json"), "path": output}), nl=False)
    elif output:
        click.echo(f"wrote {output}: {recipe.launch}")
        for note in recipe.notes:
            click.echo(f"note: {note}", err=True)
    else:
        click.echo(recipe.content, nl=False)
    return 0
