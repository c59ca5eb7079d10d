"""`advisor reference-run`: train full fine-tuning and LoRA side by side for a few steps, and measure both.

A thin door over `advisor.reference.reference_run`: options in, a `ReferenceRun` out as
JSON or a table, and a markdown report written only once the run has finished.
SIGTERM stops the run like Ctrl-C: the temporary folder goes, nothing is half-written.
"""

from __future__ import annotations

import sys

import click

from ..files import dumps_json, ensure_writable, write_atomic
from ..reference.run import DEFAULT_BATCH, DEFAULT_SEQ, DEFAULT_STEPS
from .running import progress_bar, sigterm_interrupts

TABLE_WIDTH = 100


@click.command("reference-run")
@click.option("--model", "model", required=True, metavar="SPEC", help="Catalog id (see `advisor models`), a config.json, or a model folder.")
@click.option("--method", type=click.Choice(["lora", "qlora"]), default="lora", show_default=True, help="The adapter method run beside full fine-tuning (QLoRA is refused: it needs CUDA and bitsandbytes, and is not measured yet).")
@click.option("--rank", type=int, default=8, show_default=True, help="LoRA rank r.")
@click.option("--alpha", type=float, default=None, help="LoRA alpha (default 2 x rank).")
@click.option("--targets", default=None, help="Modules LoRA adapts: q_proj,v_proj or all-linear (default: PEFT's for the architecture).")
@click.option("--batch", type=int, default=DEFAULT_BATCH, show_default=True, help="Sequences per step.")
@click.option("--seq", type=int, default=DEFAULT_SEQ, show_default=True, help="Tokens per sequence.")
@click.option("--steps", type=int, default=DEFAULT_STEPS, show_default=True, help="Training steps per run; the first warms up.")
@click.option("--dataset", default=None, metavar="PATH", help="JSONL (`text`, or `prompt` and `completion`) or plain text; default: a built-in corpus.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--max-seconds", type=float, default=None, help="Stop after this long and report what was measured (also the time budget for running the whole model).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--report", default=None, metavar="PATH", help="Write a markdown report of the run to PATH.")
@click.option("--force", is_flag=True, help="Replace the --report file if it exists.")
def command(model, method, rank, alpha, targets, batch, seq, steps, dataset, device, max_seconds, seed, as_json, report, force):
    """Measure what LoRA saves against full fine-tuning with a real, small run on this machine."""
    from ..estimate import training_settings
    from ..reference import reference_run, render_markdown

    settings = training_settings(method=method, rank=rank, alpha=alpha, targets=targets, batch=batch, seq=seq)
    if report is not None:
        ensure_writable(report, force=force, field="report")
    with sigterm_interrupts(), progress_bar(enabled=not as_json and sys.stderr.isatty()) as progress:
        run = reference_run(model, settings, steps=steps, dataset=dataset, device=device, max_seconds=max_seconds, seed=seed,
                            progress=progress)
    if report is not None:
        write_atomic(report, render_markdown(run), force=force, field="report")
    if as_json:
        click.echo(dumps_json(run.model_dump(mode="json")), nl=False)
    else:
        print_run_table(run)
    if not run.complete:
        click.echo(f"warning: the run was cut short: {run.cut_short}", err=True)


def print_run_table(run) -> None:
    """Measured beside estimated, full fine-tuning beside LoRA, and what LoRA saves."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    scale = run.scale
    where = ("the whole model" if scale.kind == "full"
             else f"proxy: measured at {' and '.join(map(str, scale.depths))} layers, extrapolated to {scale.target_layers}")
    title = f"Reference run: {run.model.id} ({run.model.model_type}, {run.model.layers} layers) on {run.device.kind.upper()}, {where}"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, caption="measured, the estimator's figure, its error",
                  caption_justify="left")
    table.add_column("", no_wrap=True)
    for head in ("full", "estimate", "error", "LoRA", "estimate", "error", "full/LoRA"):
        table.add_column(head, justify="right", no_wrap=True)
    full, lora = run.full.figures, run.lora.figures
    rows = [("trainable params", "trainable_params", _count), ("weights", "weight_bytes", _bytes),
            ("gradients", "gradient_bytes", _bytes), ("AdamW states", "optimizer_state_bytes", _bytes),
            ("activations", "activation_bytes", _bytes), ("outputs held", "output_bytes", _bytes),
            ("peak of a step", "peak_bytes", _bytes), ("checkpoint", "checkpoint_bytes", _bytes)]
    for label, name, fmt in rows:
        cells = []
        for figures in (full, lora):
            c = getattr(figures, name) if figures else None
            cells += [fmt(c.measured) if c else "-", fmt(c.estimated) if c else "-", _error(c.error) if c else "-"]
        saving = getattr(run.savings, name, None) if run.savings else None
        table.add_row(label, *cells, _ratio(saving.measured) if saving else "-")
    step = [_seconds(f.step_seconds) if f else "-" for f in (full, lora)]
    table.add_row("step time", step[0], "", "", step[1], "", "", _ratio(run.savings.step_seconds) if run.savings else "-")
    losses = [f"{r.loss_first:.2f}->{r.loss_last:.2f}" if r.loss_first is not None else "-" for r in (run.full, run.lora)]
    table.add_row("loss first->last", losses[0], "", "", losses[1], "", "", "")
    console = Console()
    console.width = max(console.width, TABLE_WIDTH)  # wrapped by the terminal rather than cut short
    console.print(table)
    serving = run.serving
    if serving.base_seconds is not None:
        match = {True: "yes", False: "NO", None: "-"}[serving.outputs_match]
        console.print(f"Serving (batch {serving.batch} x {serving.seq} tokens, {serving.basis}): base {_seconds(serving.base_seconds)}, "
                      f"unmerged adapter {_seconds(serving.unmerged_seconds)} ({serving.unmerged_overhead:+.0%}), "
                      f"merged {_seconds(serving.merged_seconds)} ({serving.merged_overhead:+.0%}); merged outputs match unmerged: {match}")
    console.print(f"Scale: {scale.reason}")
    console.print(f"Measured with {run.device.memory_mechanism}; {run.device.optimizer}; {run.seconds:.1f} s.")
    for note in run.notes:
        console.print(f"- {note}")


def _bytes(value) -> str:
    if value is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(value) >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def _count(value) -> str:
    if value is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.2f}{unit}"
    return f"{value:,.0f}"


def _error(value) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _ratio(value) -> str:
    return "-" if value is None else f"{value:,.1f}x"


def _seconds(value) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
