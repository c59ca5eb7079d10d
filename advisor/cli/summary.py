"""The readable summary `advisor assess` prints on a terminal (rich is imported only here)."""

from __future__ import annotations

from ..models import Assessment


def print_summary(assessment: Assessment) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    labels = {option.option: option.label for option in assessment.options}
    a = assessment
    console.print(f"[bold]Decision:[/bold] {a.decision}   [bold]Primary:[/bold] {escape(labels[a.primary])} ({a.primary})")
    console.print(escape(a.summary))
    console.print(f"[bold]Confidence:[/bold] {a.confidence.level} ({escape(a.confidence.basis)})")
    if a.blockers:
        console.print("\n[bold]Blockers[/bold]")
        for gate in (g for g in a.gates if a.primary in g.blocks):
            console.print(f"  - {gate.question}: {escape(gate.reason)}\n    fix: {escape(gate.remediation)}")
    console.print("\n[bold]Why[/bold]")
    for reason in a.reasons:
        console.print(f"  - {escape(reason.text)} [dim]({', '.join(reason.sources)})[/dim]")
    if a.cautions:
        console.print("\n[bold]Cautions[/bold]")
        for caution in a.cautions:
            console.print(f"  - {escape(caution.text)} [dim]({', '.join(caution.sources)})[/dim]")
    table = Table(title="Options compared", title_justify="left")
    for column in ("option", "fit", "blocked by"):
        table.add_column(column)
    for option in a.options:
        table.add_row(escape(option.label), f"{option.fit:g}", ", ".join(option.blocked_by) or "-")
    console.print()
    console.print(table)
    if a.what_would_change:
        console.print("[bold]What would change the decision[/bold]")
        for change in a.what_would_change:
            outcomes = "; ".join(f"{o.level} -> {o.decision} ({o.primary})" for o in change.outcomes)
            console.print(f"  - {change.question} (now {change.current}): {escape(outcomes)}")
    if a.remediation:
        console.print("\n[bold]Open and weak answers[/bold]")
        for item in a.remediation:
            console.print(f"  - {item.question} ({item.level}): {escape(item.text)}")
    console.print(f"\n[bold]Compute feasibility:[/bold] {a.compute.status} ({escape(a.compute.reason)})")
