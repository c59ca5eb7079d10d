"""`advisor reference-run`: train full fine-tuning and LoRA side by side for a few steps, and measure both.

A thin door over `advisor.reference.reference_run`: options in, a `ReferenceRun` out as
JSON or a table, and a markdown report written only once the run has finished.
SIGTERM stops the run like Ctrl-C: the temporary folder goes, nothing is half-written.
"""

from __future__ import annotations

import sys

import click

from ..files import dumps_json, ensure_writable, write_atomic
from ..fmt import MISSING, fmt_bytes, fmt_count, fmt_number, fmt_pct, fmt_ratio, fmt_seconds
from ..reference.run import DEFAULT_BATCH, DEFAULT_SEQ, DEFAULT_STEPS
from .running import progress_bar, sigterm_interrupts
from .settings_options import settings_values, training_options

TABLE_WIDTH = 100


@click.command("reference-run")
@click.option(
    "--model",
    "model",
    required=True,
    metavar="SPEC",
    help="Catalog id (see `advisor models`), a config.json, or a model folder.",
)
@training_options(
    include=("method", "rank", "alpha", "targets", "batch", "seq", "precision", "grad_checkpointing", "attention"),
    overrides={
        "method": {
            "type": click.Choice(["lora", "qlora"]),
            "help": "The adapter method run beside full fine-tuning (QLoRA is refused: it needs CUDA and "
            "bitsandbytes, and is not measured yet).",
        },
        "batch": {"default": DEFAULT_BATCH},
        "seq": {"default": DEFAULT_SEQ},
    },
)
@click.option(
    "--steps", type=int, default=DEFAULT_STEPS, show_default=True, help="Training steps per run; the first warms up."
)
@click.option(
    "--dataset",
    default=None,
    metavar="PATH",
    help="JSONL (`text`, or `prompt` and `completion`) or plain text; default: a built-in corpus.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--max-seconds",
    type=float,
    default=None,
    help="Stop after this long and report what was measured (also the time budget for running the whole model).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@click.option(
    "--nproc",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="Processes under torch.distributed (gloo on the CPU, NCCL with a GPU per process); 2+ needs --sharding.",
)
@click.option(
    "--sharding",
    type=click.Choice(["ddp", "fsdp"]),
    default=None,
    help="With --nproc 2+: DistributedDataParallel, or FSDP2 fully_shard; measured per rank beside the "
    "estimator's per-GPU figure.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--report", default=None, metavar="PATH", help="Write a markdown report of the run to PATH.")
@click.option("--force", is_flag=True, help="Replace the --report file if it exists.")
def command(model, steps, dataset, device, max_seconds, seed, nproc, sharding, as_json, report, force, **values):
    """Measure what LoRA saves against full fine-tuning with a real, small run on this machine."""
    from ..estimate import training_settings
    from ..reference import reference_run
    from ..report.render import render_reference_run

    settings = training_settings(**settings_values(values))
    if nproc > 1 or sharding is not None:
        return distributed_command(
            model, settings, nproc, sharding, steps, seed, as_json, report, force, dataset, max_seconds
        )
    if report is not None:
        ensure_writable(report, force=force, field="report")
    with sigterm_interrupts(), progress_bar(enabled=not as_json and sys.stderr.isatty()) as progress:
        run = reference_run(
            model,
            settings,
            steps=steps,
            dataset=dataset,
            device=device,
            max_seconds=max_seconds,
            seed=seed,
            progress=progress,
        )
    _deliver(run, report, render_reference_run, print_run_table, force=force, as_json=as_json)


def _deliver(run, report, render, print_table, *, force: bool, as_json: bool) -> None:
    """A finished run's report (checked writable before the run), its JSON or table, and a warning if cut short."""
    if report is not None:
        write_atomic(report, render(run), force=force, field="report")
    if as_json:
        click.echo(dumps_json(run.model_dump(mode="json")), nl=False)
    else:
        print_table(run)
    if not run.complete:
        click.echo(f"warning: the run was cut short: {run.cut_short}", err=True)


def print_run_table(run) -> None:
    """Measured beside estimated, full fine-tuning beside LoRA, and what LoRA saves."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    from ..reference.assemble import depths_text

    scale = run.scale
    if scale.kind == "full":
        where = "the whole model"
    elif scale.depths:
        where = f"proxy: measured at {depths_text(scale.depths)} layers, extrapolated to {scale.target_layers}"
    else:
        where = "proxy: stopped before any depth was measured"
    model = run.model
    title = (
        f"Reference run: {model.id} ({model.model_type}, {model.layers} layers) on {run.device.kind.upper()}, {where}"
    )
    table = Table(
        title=escape(title),  # a model id or folder name may hold "[...]", which rich would read as markup
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption="measured, the estimator's figure, its error",
        caption_justify="left",
    )
    table.add_column("", no_wrap=True)
    for head in ("full", "estimate", "error", "LoRA", "estimate", "error", "full/LoRA"):
        table.add_column(head, justify="right", no_wrap=True)
    full, lora = run.full.figures, run.lora.figures
    rows = [
        ("trainable params", "trainable_params", fmt_count),
        ("weights", "weight_bytes", fmt_bytes),
        ("gradients", "gradient_bytes", fmt_bytes),
        ("AdamW states", "optimizer_state_bytes", fmt_bytes),
        ("activations", "activation_bytes", fmt_bytes),
        ("outputs held", "output_bytes", fmt_bytes),
        ("peak of a step", "peak_bytes", fmt_bytes),
        ("checkpoint", "checkpoint_bytes", fmt_bytes),
    ]
    for label, name, fmt in rows:
        cells = []
        for figures in (full, lora):
            c = getattr(figures, name) if figures else None
            cells += [fmt(c.measured), fmt(c.estimated), fmt_pct(c.error, signed=True)] if c else [MISSING] * 3
        saving = getattr(run.savings, name, None) if run.savings else None
        table.add_row(label, *cells, fmt_ratio(saving.measured if saving else None))
    step = [fmt_seconds(f.step_seconds if f else None) for f in (full, lora)]
    table.add_row(
        "step time", step[0], "", "", step[1], "", "", fmt_ratio(run.savings.step_seconds if run.savings else None)
    )
    losses = [f"{fmt_number(r.loss_first)} -> {fmt_number(r.loss_last)}" for r in (run.full, run.lora)]
    table.add_row("loss first->last", losses[0], "", "", losses[1], "", "", "")
    console = Console()
    # As wide as the table's widest row needs (rich would cut cells to fit a narrower console): a terminal
    # narrower than that wraps the lines rather than losing figures.
    widest = Measurement.get(console, console.options.update_width(10_000), table).maximum
    console.width = max(console.width, TABLE_WIDTH, widest)
    console.print(table)
    for line in spread_lines(run):
        console.print(escape(line))
    console.print(escape(f"Scale: {scale.reason}"))
    console.print(
        escape(f"Measured with {run.device.memory_mechanism}; {run.device.optimizer}; {fmt_seconds(run.seconds)}.")
    )
    for note in run.notes:
        console.print(escape(f"- {note}"))


def interval_text(interval, fmt) -> str:
    """A 90% interval as text ("1.04 ms to 1.10 ms"), or a dash without one."""
    return MISSING if not interval else f"{fmt(interval[0])} to {fmt(interval[1])}"


def spread_lines(run) -> list[str]:
    """The times with their spreads: step times and what LoRA saves in them, then serving (or why it is not
    given). Medians, with 90% bootstrap intervals (advisor.reference.spread)."""
    lines = []
    full, lora = run.full.figures, run.lora.figures
    pct = lambda x: fmt_pct(x, 0, signed=True)  # noqa: E731
    if full or lora:
        parts = [
            f"{label} {fmt_seconds(f.step_seconds)} ({interval_text(f.step_seconds_interval, fmt_seconds)})"
            for label, f in (("full", full), ("LoRA", lora))
            if f
        ]
        if run.savings:
            sv = run.savings
            ratio = lambda x: fmt_ratio(x, 2)  # noqa: E731
            parts.append(f"full/LoRA {ratio(sv.step_seconds)} ({interval_text(sv.step_seconds_interval, ratio)})")
        lines.append(
            f"Step times (median after warm-up, {run.full.basis or 'measured'}; 90% intervals): " + ", ".join(parts)
        )
    serving = run.serving
    if serving.base_seconds is not None:
        match = {True: "yes", False: "NO", None: MISSING}[serving.outputs_match]
        check = {True: "yes", False: "NO: a measurement problem, see the notes", None: MISSING}[
            serving.merged_times_like_base
        ]
        rounds = f"{serving.measurements[-1].rounds} interleaved rounds" if serving.measurements else "rounds"
        lines.append(
            f"Serving (batch {serving.batch} x {serving.seq} tokens, {serving.basis}, medians of {rounds}; "
            f"90% intervals): base {fmt_seconds(serving.base_seconds)} "
            f"({interval_text(serving.base_interval, fmt_seconds)}), "
            f"unmerged adapter {fmt_seconds(serving.unmerged_seconds)} ({pct(serving.unmerged_overhead)}, "
            f"{interval_text(serving.unmerged_overhead_interval, pct)}), "
            f"merged {fmt_seconds(serving.merged_seconds)} ({pct(serving.merged_overhead)}, "
            f"{interval_text(serving.merged_overhead_interval, pct)}); merged outputs match unmerged: {match}; "
            f"merged times like base: {check}"
        )
    elif serving.withheld:
        lines.append(f"Serving: not given at {run.model.layers} layers: {serving.withheld}")
    return lines


def distributed_command(model, settings, nproc, sharding, steps, seed, as_json, report, force, dataset, max_seconds):
    """`--nproc N --sharding ddp|fsdp`: the multi-process run, each rank beside the estimator's per-GPU peak."""
    from ..errors import FieldIssue, InvalidInput

    def bad(field: str, message: str, allowed=None):
        raise InvalidInput(message, fields=[FieldIssue(field=field, message=message, allowed=allowed)])

    if nproc < 2:
        bad("--sharding", "--sharding needs --nproc 2 or more")
    if sharding is None:
        bad("--sharding", f"--nproc {nproc} needs --sharding", ["ddp", "fsdp"])
    if report is not None:
        ensure_writable(report, force=force, field="report")
    from ..reference.distributed import distributed_run
    from ..report.render import render_distributed_run

    with sigterm_interrupts():
        run = distributed_run(
            model,
            settings,
            nproc=nproc,
            sharding=sharding,
            steps=steps,
            seed=seed,
            dataset=dataset,
            max_seconds=max_seconds,
        )
    _deliver(run, report, render_distributed_run, print_distributed_table, force=force, as_json=as_json)


def print_distributed_table(run) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(
        title=escape(f"{run.model}: {run.nproc} processes, {run.sharding} ({run.backend}, {run.device})"),
        title_justify="left",
    )
    heads = ("method", "rank", "steps", "peak measured", "estimate per GPU", "error", "gloo buffers (left out)")
    for head in (*heads, "median step", "90% interval"):
        table.add_column(head, justify="right" if head != "method" else "left", no_wrap=True)
    for m in run.methods:
        for rank, error in zip(m.ranks, m.errors, strict=True):
            table.add_row(
                m.method,
                str(rank.rank),
                str(rank.steps),
                fmt_bytes(rank.peak_bytes) if rank.peak_bytes is not None else MISSING,
                fmt_bytes(m.estimated_peak_bytes),
                fmt_pct(error, signed=True),
                fmt_bytes(rank.collective_staging_bytes) if rank.collective_staging_bytes is not None else MISSING,
                fmt_seconds(rank.step_seconds),
                interval_text(rank.step_seconds_interval, fmt_seconds),
            )
    console = Console()
    widest = Measurement.get(console, console.options.update_width(10_000), table).maximum
    console.width = max(console.width, TABLE_WIDTH, widest)
    console.print(table)
    console.print(escape(f"Data: {run.dataset.source} ({run.dataset.tokenizer}); {fmt_seconds(run.seconds)}."))
    for note in run.notes:
        console.print(escape(f"- {note}"))
