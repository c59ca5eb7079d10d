"""The readable summary `advisor assess` prints on a terminal (rich is imported only here)."""

from __future__ import annotations

from ..assessment.contract import Assessment


def print_summary(assessment: Assessment) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    a = assessment
    console = Console(highlight=False)
    labels = {option.option: option.label for option in a.options}

    def section(title: str, lines: list[str], *, numbered: bool = False) -> None:
        """A heading and a bulleted (or numbered) list whose items wrap under their own text."""
        if not lines:
            return
        console.print(f"\n[bold]{title}[/bold]")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=len(f"{len(lines)}.") if numbered else 1, justify="right")
        grid.add_column()
        for i, line in enumerate(lines, 1):
            grid.add_row(f"{i}." if numbered else "-", line)
        console.print(grid)

    def cited(text: str, sources: list[str]) -> str:
        return f"{escape(text)} [dim]({', '.join(sources)})[/dim]"

    console.print(
        f"[bold]Decision:[/bold] {a.decision}   [bold]Primary:[/bold] {escape(labels[a.primary])} ({a.primary})"
    )
    console.print(escape(a.summary))
    console.print(f"[bold]Confidence:[/bold] {a.confidence.level}: {escape(a.confidence.basis)}")
    target = a.training_target()
    section(
        "Blockers" if a.blockers else f"Blockers of training ({labels[target]}), should it come to that",
        [
            f"{g.question}: {escape(g.reason)} [bold]Fix:[/bold] {escape(g.remediation)}"
            for g in a.gates
            if target in g.blocks
        ],
    )
    section(
        "Conflicts", [f"{c.id} ({', '.join(c.fields)}): {escape(c.text)} {escape(c.resolution)}" for c in a.conflicts]
    )
    if a.dataset is not None:
        d = a.dataset
        found = ", ".join(f"{kind} {n:,}" for kind, n in d.pii.items() if n) or "none found"
        overlap = (
            f"; eval overlap {d.eval_overlap.exact:,} exact, {d.eval_overlap.near:,} near" if d.eval_overlap else ""
        )
        section(
            "Dataset (measured)",
            [
                escape(
                    f"{d.path}: {d.examples:,} valid examples ({d.format}) of {d.records:,} records; "
                    f"{d.duplicates.exact:,} exact and {d.duplicates.near:,} near duplicates{overlap}"
                ),
                escape(f"personal data and secrets: {found}; card licence: {d.license or 'unknown'}"),
                escape("measured answers: " + ", ".join(k for k, v in a.evidence.items() if v == "measured")),
            ],
        )
    section("Why", [cited(r.text, r.sources) for r in a.reasons])
    section("Cautions", [cited(c.text, c.sources) for c in a.cautions])
    section(
        "Next steps",
        [
            cited(s.text, s.sources) + (f"\n[bold]$ {escape(s.command)}[/bold]" if s.command else "")
            for s in a.next_steps
        ],
        numbered=True,
    )
    table = Table(title="Options compared", title_justify="left", title_style="bold")
    for column in ("option", "fit", "blocked by"):
        table.add_column(column)
    for option in a.options:
        table.add_row(escape(option.label), f"{option.fit:g}", ", ".join(option.blocked_by) or "-")
    console.print()
    console.print(table)
    section(
        "What would change the decision",
        [
            f"{c.question} (now {c.current}): "
            + escape("; ".join(f"{' / '.join(levels)} -> {_outcome(o, a, labels)}" for levels, o in c.grouped()))
            for c in a.what_would_change
        ],
    )
    section("Open and weak answers", [f"{r.question} ({r.level}): {escape(r.text)}" for r in a.remediation])
    console.print(
        f"\n[bold]Compute feasibility:[/bold] {a.compute.status.replace('_', ' ')}: {escape(a.compute.reason)}"
    )
    for line in a.compute.details:
        console.print(f"- {escape(line)}")
    run = getattr(a, "reference_run", None)
    if run is not None:
        from .reference import print_run_table

        console.print()
        print_run_table(run)


def _outcome(outcome, a: Assessment, labels: dict[str, str]) -> str:
    text = f"{outcome.decision}, {labels[outcome.primary]}"
    if outcome.training_blockers != a.training_blockers:
        text += f" (blockers left: {', '.join(outcome.training_blockers) or 'none'})"
    return text
