"""Errors every door reports the same way: a stable code, a message, the fields at fault.

A user's mistake (a wrong enum, a missing file, a rank of 0) is an `InvalidInput`
and exits 2; a failure of ours exits 1. The CLI prints `ErrorInfo` as
`{"error": {...}}` with `--json`, the MCP server returns its text as a tool error,
and the Python API raises the exception itself.
"""

# Written for start-up like the contract's models: see the docstring of advisor/assessment/contract.py.

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class FieldIssue(BaseModel):
    """One field at fault, with what would be accepted."""

    model_config = ConfigDict(defer_build=True)  # built on the first error, not at every start

    field: str = Field(description="Dotted path of the field, e.g. `stability` or `answers.dataset_examples`.")
    message: str = Field(description="What is wrong with the value.")
    allowed: list[str] | None = Field(
        default=None, description="The accepted values or range, when there is a short list."
    )


class ErrorInfo(BaseModel):
    """The machine-readable error: stable `code`, readable `message`, and the fields to fix."""

    model_config = ConfigDict(defer_build=True)

    code: str = Field(
        description=(
            "Stable error code: invalid_input, invalid_file, refused, busy, missing_dependency, interrupted, "
            "cancelled, internal."
        )
    )
    message: str
    fields: list[FieldIssue] = Field(default=[])


class AdvisorError(Exception):
    """Base of the errors the doors know how to report."""

    code = "internal"
    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, fields: list[FieldIssue] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = list(fields or [])
        if code is not None:
            self.code = code

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, fields=self.fields)

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        details = "; ".join(describe_issue(issue) for issue in self.fields if issue.message != self.message)
        return f"{self.message}: {details}" if details else self.message


class InvalidInput(AdvisorError):
    """The user's input is wrong; the message and fields say how to fix it."""

    code = "invalid_input"
    exit_code = EXIT_INVALID_INPUT

    def within(self, prefix: str) -> "InvalidInput":
        """The same error with its fields named inside `prefix` (`dataset_license` -> `answers.dataset_license`)."""
        fields = [issue.model_copy(update={"field": f"{prefix}.{issue.field}"}) for issue in self.fields]
        return type(self)(self.message, fields=fields, code=self.code)


class InvalidFile(InvalidInput):
    """A file the user named is missing, too large, unreadable or malformed."""

    code = "invalid_file"


class Refused(InvalidInput):
    """The request is valid but would not work here (e.g. a run that does not fit in memory)."""

    code = "refused"


class Busy(AdvisorError):
    """The request is valid but this process is doing the one thing of its kind it does at a time: call again."""

    code = "busy"


class MissingDependency(AdvisorError):
    """An optional dependency is needed for this command; the message names the install command."""

    code = "missing_dependency"


class Interrupted(AdvisorError):
    """The user stopped the command (Ctrl-C or SIGTERM); nothing was left half-written."""

    code = "interrupted"

    def __init__(self, message: str = "interrupted", *, exit_code: int = EXIT_SIGINT):
        super().__init__(message)
        self.exit_code = exit_code


def describe_issue(issue: FieldIssue) -> str:
    """One field's problem as a line of text: `field: message (allowed: a, b, c)`."""
    text = f"{issue.field}: {issue.message}"
    if issue.allowed:
        text += f" (allowed: {', '.join(issue.allowed)})"
    return text


_QUOTED = re.compile(r"'([^']*)'")


MAX_FIELD_ISSUES = 100  # a file with 100,000 unknown keys gets a readable error, not a 10 MB one


def field_issues(exc: ValidationError, prefix: str = "") -> list[FieldIssue]:
    """Turn pydantic's errors into `FieldIssue`s, one per field, with the allowed values of enums (at most
    MAX_FIELD_ISSUES of them, then one line saying how many more there were).

    A field whose type is a union (a number, or `unknown`) gets one error from each branch; they are
    reported as one issue that names the field itself and says `unknown` is accepted too."""
    issues: dict[str, FieldIssue] = {}
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__" and not _BRANCH.fullmatch(str(p)))
        field = ".".join(p for p in (prefix, loc) if p) or "(input)"
        unknown_branch = err["type"] == "literal_error" and err.get("ctx", {}).get("expected") == "'unknown'"
        if field in issues:
            if unknown_branch and "unknown" not in issues[field].message:
                issues[field].message += "; or unknown"
            continue
        allowed = None
        if err["type"] in ("literal_error", "enum"):
            allowed = _QUOTED.findall(str(err.get("ctx", {}).get("expected", ""))) or None
        # pydantic's message for an enum lists the values ("Input should be 'a', 'b' or 'c'"); `allowed`
        # carries them, so the message does not say them twice
        message = "not an allowed value" if allowed else err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        if "input" in err and err["type"] not in ("missing", "extra_forbidden"):
            message = f"{message} (got {_short(err['input'])})"
        issues[field] = FieldIssue(field=field, message=message, allowed=allowed)
    found = list(issues.values())
    if len(found) > MAX_FIELD_ISSUES:
        more = len(found) - MAX_FIELD_ISSUES
        found = [*found[:MAX_FIELD_ISSUES], FieldIssue(field="(more)", message=f"{more:,} more problems not listed")]
    return found


# The tags pydantic puts in an error's location for the branch of a union that failed (`constrained-int`,
# `bool`, `literal['unknown']`, `function-after[...]`): not field names.
_BRANCH = re.compile(r"constrained-\w+|literal\[.*\]|bool|int|float|str|function-[\w-]+\[.*\]")


def invalid_input(exc: ValidationError, what: str = "input", prefix: str = "") -> InvalidInput:
    """An `InvalidInput` naming every field pydantic rejected."""
    issues = field_issues(exc, prefix)
    return InvalidInput(f"invalid {what}", fields=issues)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    # Control characters would reach a terminal or a report verbatim; show them escaped.
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii", "replace")
    return text if len(text) <= limit else text[: limit - 3] + "..."
