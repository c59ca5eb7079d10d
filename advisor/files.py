"""Reading what users hand us and writing what we produce, safely.

Every file a user names goes through `read_text`: size-limited, UTF-8, text only.
Every file we write goes through `write_atomic`: a temporary file beside the
target, then a rename, so a crash or Ctrl-C never leaves half a report.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import FieldIssue, InvalidFile

MAX_ANSWERS_BYTES = 1 << 20  # an answers file is a page of YAML, not a megabyte
MAX_YAML_DEPTH = 64  # an answers file is one mapping deep, the rubric six
STDIN = "-"


def read_text(path: str | os.PathLike[str], *, field: str, limit: int = MAX_ANSWERS_BYTES) -> str:
    """The text of `path` (or stdin for "-"), refusing missing, oversized and binary files."""
    if str(path) == STDIN:
        raw = sys.stdin.buffer.read(limit + 1)
        where = "stdin"
    else:
        p = Path(path)
        if not p.exists():
            raise _file_error(field, f"no such file: {p}")
        if not p.is_file():
            raise _file_error(field, f"not a regular file: {p}")
        if p.stat().st_size > limit:
            raise _file_error(field, f"{p} is {p.stat().st_size:,} bytes; the limit is {limit:,}")
        try:
            with p.open("rb") as fh:
                raw = fh.read(limit + 1)
        except OSError as exc:
            raise _file_error(field, f"cannot read {p}: {exc.strerror}") from None
        where = str(p)
    if len(raw) > limit:
        raise _file_error(field, f"{where} is over the limit of {limit:,} bytes")
    if b"\x00" in raw:
        raise _file_error(field, f"{where} is binary, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(field, f"{where} is not UTF-8 text") from None


def load_mapping(path: str | os.PathLike[str], *, field: str, limit: int = MAX_ANSWERS_BYTES) -> dict[str, Any]:
    """A YAML or JSON file whose top level is a mapping (YAML loaded safely)."""
    text = read_text(path, field=field, limit=limit)
    if not text.strip():
        raise _file_error(field, f"{_name(path)} is empty")
    data = parse_yaml(text, field=field, name=_name(path))
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise _file_error(field, f"{_name(path)} must hold a mapping of field: value, not {kind}")
    return data


def parse_yaml(text: str, *, field: str, name: str) -> Any:
    """Parse YAML (a superset of JSON) with the safe loader; errors name the line.

    A JSON object is read by the JSON parser: YAML's parsers refuse (libyaml) or leave
    split (PyYAML) the surrogate-pair escapes that JSON writers use for characters
    beyond U+FFFF, such as the "\\ud83d\\ude00" Python's json module writes for an emoji.
    """
    data = _json_object(text)
    if data is _NOT_JSON:
        from .yaml_loader import YAMLError, load_yaml  # PyYAML's import costs ~20 ms; JSON never pays it

        try:
            data = load_yaml(text)
        except YAMLError as exc:
            raise _file_error(field, f"{name} is not valid YAML or JSON{exc.where}: {exc.problem}") from None
    _check_tree(data, field=field, name=name)
    return data


_NOT_JSON = object()


def _json_object(text: str) -> Any:
    if not text.lstrip().startswith("{"):
        return _NOT_JSON
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # YAML flow syntax, or an error the YAML parser will locate
        return _NOT_JSON


def _check_tree(data: Any, *, field: str, name: str) -> None:
    """No collection deeper than MAX_YAML_DEPTH, and only text that can be written back out
    (an unpaired surrogate escape such as "\\ud800" is not a character)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _file_error(
                    field, f"{name} holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text"
                ) from None
        elif isinstance(value, (dict, list)):
            if depth >= MAX_YAML_DEPTH:
                raise _file_error(field, f"{name} is nested more than {MAX_YAML_DEPTH} levels deep")
            items = [item for pair in value.items() for item in pair] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def _current_umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; done once, at import, before any thread starts
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_atomic(path: str | os.PathLike[str], text: str, *, force: bool = False, field: str = "path") -> Path:
    """Write `text` to `path` through a temporary file and a rename.

    Refuses to replace an existing file unless `force`. The parent folder must exist:
    we write where we were asked and nowhere else.
    """
    target = ensure_writable(path, force=force, field=field)
    parent = target.parent
    # The temporary name adds characters to the target's ("." + name + "." + 8 random + ".tmp"): a target
    # name near the file system's limit is legal, so its temporary name is cut to fit instead.
    room = _name_max(parent) - len(".." + "x" * 8 + ".tmp")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:room]}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise _file_error(field, f"cannot write in {parent}: {exc.strerror}") from None
    try:
        # mkstemp makes the file private (0600); give it the mode any new file of the user gets
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def ensure_writable(path: str | os.PathLike[str], *, force: bool = False, field: str = "path") -> Path:
    """`path` as a Path, if `write_atomic` could write it; checked before slow work so it fails early."""
    target = check_name_length(Path(path), field=field)
    if target.is_dir():
        raise _file_error(field, f"{target} is a folder; give a file path")
    if target.exists() and not force:
        raise _file_error(field, f"{target} exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise _file_error(field, f"folder {target.parent} does not exist")
    return target


def check_name_length(target: Path, *, field: str) -> Path:
    """`target`, if its name fits the file system (checked first: any other look at it would raise Errno 36)."""
    try:
        limit = _name_max(target.parent if target.parent.is_dir() else Path("."))
    except OSError:  # a folder name on the way is itself too long
        limit = 255
    size = len(os.fsencode(target.name))
    if size > limit:
        raise _file_error(field, f"the file name is {size} bytes long; this file system allows {limit}")
    return target


def _name_max(folder: Path) -> int:
    """The longest file name (in bytes) `folder`'s file system accepts; 255 where it does not say."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def dumps_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _name(path: str | os.PathLike[str]) -> str:
    return "stdin" if str(path) == STDIN else str(path)


def _file_error(field: str, message: str) -> InvalidFile:
    return InvalidFile(message, fields=[FieldIssue(field=field, message=message)])
