"""`advisor inspect-data PATH`: measure a dataset (formats, tokens, duplicates, personal data, licence)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import MissingDependency
from ..files import dumps_json, ensure_writable, write_atomic

DATA_INSTALL = "pip install 'advisor[data]'"


@click.command("inspect-data", short_help="Measure a dataset: validity, tokens, duplicates, personal data, licence.")
@click.argument("path", metavar="PATH", type=click.Path(path_type=Path))
@click.option("--eval", "eval_path", type=click.Path(path_type=Path), help="An evaluation set to check for overlap.")
@click.option(
    "--model",
    metavar="FOLDER",
    help="A local model folder with tokenizer.json: count tokens with its tokenizer (else approximate counts).",
)
@click.option("--card", type=click.Path(path_type=Path), help="The dataset card (README.md) to read the licence from.")
@click.option("--seq-len", type=click.IntRange(1, 10**7), help="Also count the examples this length would truncate.")
@click.option("--json", "as_json", is_flag=True, help="Print the DatasetReport as JSON on stdout.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write a markdown report to this path.")
@click.option("--force", is_flag=True, help="Replace an existing report.")
def inspect_data(
    path: Path,
    eval_path: Path | None,
    model: str | None,
    card: Path | None,
    seq_len: int | None,
    as_json: bool,
    report: Path | None,
    force: bool,
) -> None:
    """Read a dataset (JSONL, JSON, CSV, Parquet, a `datasets` save_to_disk folder or a folder of data files) and
    measure what `advisor assess --data` weighs: valid examples, tokens, exact and near duplicates, overlap with
    --eval, personal data and secrets (always masked), the dataset card's licence and quality signals.

    Streams the files: memory stays bounded whatever their size. Nothing read is executed.
    """
    if report is not None:
        ensure_writable(report, force=force, field="--report")
    result = run_inspection(
        path, eval_path=eval_path, model=model, card=card, seq_len=seq_len, show_progress=not as_json
    )
    if report is not None:
        from ..report.render import render_dataset_report

        write_atomic(report, render_dataset_report(result), force=force, field="--report")
    if as_json:
        click.echo(dumps_json(result.model_dump(mode="json")), nl=False)
    else:
        print_dataset(result)
    if report is not None:
        click.echo(f"report written to {report}", err=True)


def run_inspection(
    path, *, eval_path=None, model=None, card=None, seq_len=None, show_progress=False, field="PATH", eval_field="--eval"
):
    """`inspect_dataset` with a byte-count progress bar on a terminal's stderr."""
    from ..dataset.inspect import inspect_dataset

    try:
        if not (show_progress and sys.stderr.isatty()):
            return inspect_dataset(
                path, eval_path=eval_path, model=model, card=card, seq_len=seq_len, field=field, eval_field=eval_field
            )
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("reading"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("read", total=_size(path) + (_size(eval_path) if eval_path else 0))
            return inspect_dataset(
                path,
                eval_path=eval_path,
                model=model,
                card=card,
                seq_len=seq_len,
                field=field,
                eval_field=eval_field,
                progress=lambda n: bar.advance(task, n),
            )
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("numpy", "pyarrow", "phonenumbers", "detect_secrets"):
            raise MissingDependency(f"inspecting a dataset needs {exc.name}: run `{DATA_INSTALL}`") from None
        raise


def _size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def print_dataset(d) -> None:
    """The inspection for a person, on stdout."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)  # a line per fact, whatever the width; the terminal wraps
    console.print(f"[bold]{escape(d.path)}[/]: {d.examples:,} valid examples ({d.format}) of {d.records:,} records")
    if d.invalid:
        console.print(f"  invalid: {d.invalid:,}")
        for e in d.invalid_examples[:5]:
            console.print(f"    {escape(e.file)} line {e.line}: {escape(e.message)}")
    t = d.tokens
    console.print(
        f"  tokens: min {t.min:,}, median {t.p50:,}, p95 {t.p95:,}, max {t.max:,}, total {t.total:,} "
        f"({escape(t.basis)})"
    )
    console.print(
        f"  duplicates: {d.duplicates.exact:,} exact, {d.duplicates.near:,} near (Jaccard >= {d.duplicates.threshold})"
    )
    if d.eval_overlap is not None:
        o = d.eval_overlap
        console.print(f"  eval overlap: {o.exact:,} exact, {o.near:,} near of {o.eval_examples:,} eval examples")
    found = ", ".join(f"{kind} {n:,}" for kind, n in d.pii.items() if n) or "none found"
    console.print(f"  personal data and secrets: {found}")
    for p in d.pii_examples[:5]:
        console.print(f"    {p.kind}: {escape(p.file)} line {p.line}, {escape(p.field)}: {escape(p.masked)}")
    console.print(f"  licence (card): {escape(d.license or 'unknown')}")
    measured = {k: v for k, v in d.answers.model_dump().items() if v is not None}
    console.print("  answers measured: " + escape(", ".join(f"{k}={v}" for k, v in measured.items())))
