"""The `advisor` command line: one module per command group, loaded on first use.

Commands are registered by name in `COMMANDS` and imported only when invoked, so
`advisor assess` never pays for the estimator's imports (torch, transformers, peft).
Every error is reported here, once: a user's mistake exits 2 with a message (or a
JSON error object with `--json`), our own failure exits 1, Ctrl-C exits 130. A group
run without a command (`advisor`, `advisor rubric`) prints its help and exits 0, as
`--help` does: click 8.2+ reports it as a usage error (`NoArgsIsHelpError`).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

import click

# The CLI is an application: no pydantic plugin (an observability hook another installed package registers)
# has anything to observe in it, and finding plugins reads every installed distribution's entry points when
# the first model is built: ~30 ms of every start (bench/cold_start.py). A value you set yourself wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from ..errors import (  # noqa: E402
    EXIT_FAILURE,
    EXIT_INVALID_INPUT,
    EXIT_SIGINT,
    AdvisorError,
    ErrorInfo,
    FieldIssue,
    describe_issue,
)
from ..files import dumps_json  # noqa: E402

# click 8.2+ raises it for a group run without a command; older click prints the help itself.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())

# name -> "module:attribute" under advisor.cli
COMMANDS: dict[str, str] = {
    "assess": "assess:assess",
    "questions": "questions:questions",
    "rubric": "rubric:rubric",
    "estimate": "estimate:command",
    "models": "estimate:models_command",
    "fit": "fit:command",
    "gpus": "fit:gpus_command",
    "recipe": "fit:recipe_command",
    "reference-run": "reference:command",
    "mcp": "mcp:mcp_command",
    "schema": "schema:schema",
    "inspect-data": "inspect_data:inspect_data",
}


class LazyGroup(click.Group):
    """A click group that imports each command's module only when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        _end_of_start_up()
        return getattr(module, attr)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        json_mode = "--json" in argv
        try:
            self.main_without_errors(argv, prog_name, complete_var, **extra)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except AdvisorError as exc:
            code = report_error(exc.info(), exc.exit_code, json_mode)
        except NO_ARGS_IS_HELP as exc:
            click.echo(exc.ctx.get_help())
            code = 0
        except click.UsageError as exc:
            code = report_error(_usage_error(exc), EXIT_INVALID_INPUT, json_mode)
        except (KeyboardInterrupt, click.Abort):
            code = report_error(ErrorInfo(code="interrupted", message="interrupted"), EXIT_SIGINT, json_mode)
        except click.ClickException as exc:
            code = report_error(ErrorInfo(code="invalid_input", message=exc.format_message()), exc.exit_code, json_mode)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if os.environ.get("ADVISOR_DEBUG"):
                raise
            message = f"internal error: {type(exc).__name__}: {exc} (set ADVISOR_DEBUG=1 for the traceback)"
            code = report_error(ErrorInfo(code="internal", message=message), EXIT_FAILURE, json_mode)
        else:
            code = 0
        if standalone_mode:
            sys.exit(code)
        return code

    def main_without_errors(self, argv, prog_name, complete_var, **extra):
        # standalone_mode=False hands every exception to `main` above.
        result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        if isinstance(result, int) and result:
            raise click.exceptions.Exit(result)


def report_error(info: ErrorInfo, exit_code: int, json_mode: bool) -> int:
    """Print an error the way the caller asked for: JSON on stdout, or text on stderr."""
    if json_mode:
        click.echo(dumps_json({"error": info.model_dump(mode="json")}), nl=False)
    else:
        # The field a one-field error is about leads its line (`--save-answers: folder x does not exist`).
        named = [issue.field for issue in info.fields if issue.message == info.message]
        lead = f"{named[0]}: " if len(named) == 1 and named[0] not in info.message else ""
        click.echo(f"error: {_printable(lead + info.message)}", err=True)
        for issue in info.fields:
            if issue.message == info.message:
                continue
            click.echo(_printable(f"  {describe_issue(issue)}"), err=True)
    return exit_code


def _printable(text: str) -> str:
    """`text` for a terminal, one line: a key or a file name from the user can hold ESC sequences, line
    breaks or bidi overrides, shown here as escapes (\\x1b, \\n, \\u202e)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _usage_error(exc: click.UsageError) -> ErrorInfo:
    fields = []
    param = getattr(exc, "param", None)
    if param is not None:
        name = (param.opts[0] if getattr(param, "opts", None) else param.name) or "argument"
        allowed = list(param.type.choices) if isinstance(getattr(param, "type", None), click.Choice) else None
        fields.append(FieldIssue(field=name, message=exc.format_message(), allowed=allowed))
    return ErrorInfo(code="invalid_input", message=exc.format_message(), fields=fields)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="advisor", message="advisor %(version)s")
def cli() -> None:
    """Decide whether to adapt a model with LoRA or use something cheaper first."""


def _end_of_start_up() -> None:
    """Collection back on once a command's module is imported, if the entry point paused it (advisor/__main__.py):
    what start-up built lives as long as the process, so it is frozen out of every later collection first."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main() -> None:
    cli.main(prog_name="advisor")
