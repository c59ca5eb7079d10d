"""Finding the data files under a path and streaming their records, one at a time.

Every reader yields `(line, record)` where `record` is the parsed object, or a `BadRecord` for a
record that cannot be parsed (a malformed JSON line): those are counted and listed as invalid.
A file that is hostile or broken as a whole (binary, not UTF-8, a lone surrogate, a line past the
limit, nesting past the limit, a corrupt Parquet or Arrow file) raises `InvalidFile` naming the file
and line, and nothing is read further. Nothing read is executed: no pickle, no loading scripts, no
`trust_remote_code`; Parquet and Arrow are read with pyarrow's readers only.

JSONL and CSV are streamed line by line (memory bounded by the longest line); Parquet and Arrow in
record batches; a JSON file (one array) is parsed whole and so has its own size limit.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FieldIssue, InvalidFile, MissingDependency
from .checks import Limits

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".arrow")
DATA_INSTALL = "pip install 'advisor[data]'"


@dataclass(frozen=True)
class BadRecord:
    message: str


Progress = Callable[[int], None]  # called with bytes read since the last call


def file_error(field: str, message: str) -> InvalidFile:
    return InvalidFile(message, fields=[FieldIssue(field=field, message=message)])


def discover(path: Path, *, field: str) -> tuple[list[Path], Path | None]:
    """The data files at `path` (a file, a `datasets` save_to_disk folder, or a folder of data files) and
    the dataset card beside them (README.md), if any."""
    if not path.exists():
        raise file_error(field, f"no such file or folder: {path}")
    if path.is_file():
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise file_error(
                field, f"{path.name}: unknown data format; use one of {', '.join(DATA_SUFFIXES)} or a folder"
            )
        card = path.parent / "README.md"
        return [path], card if card.is_file() else None
    if not path.is_dir():
        raise file_error(field, f"not a regular file or folder: {path}")
    card = path / "README.md"
    card = card if card.is_file() else None
    if (path / "dataset_dict.json").is_file():  # a DatasetDict saved by `datasets`: read its train split
        split = path / "train"
        if not split.is_dir():
            raise file_error(field, f"{path}: a saved DatasetDict without a train split")
        path = split
    if (path / "state.json").is_file():  # a Dataset saved by `datasets` (save_to_disk): Arrow stream files
        files = _state_files(path, field)
    else:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not any(part.startswith(".") for part in p.parts)
        )
    if not files:
        raise file_error(field, f"{path}: no data files ({', '.join(DATA_SUFFIXES)}) in this folder")
    return files, card


def _state_files(folder: Path, field: str) -> list[Path]:
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise file_error(field, f"{folder / 'state.json'}: not a datasets state file ({exc})") from None
    files = []
    for name in names:
        target = (folder / name).resolve()
        if not target.is_relative_to(folder.resolve()) or not target.is_file():
            raise file_error(field, f"{folder / 'state.json'}: data file {name!r} is missing or outside the folder")
        files.append(target)
    return files


def read_records(file: Path, name: str, limits: Limits, *, field: str, progress: Progress) -> Iterator[tuple[int, Any]]:
    """`(line, record)` for every record of `file` (a BadRecord for one that does not parse)."""
    suffix = file.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl(file, name, limits, field, progress)
    if suffix == ".json":
        return _json(file, name, limits, field, progress)
    if suffix == ".csv":
        return _csv(file, name, limits, field, progress)
    if suffix == ".parquet":
        return _parquet(file, name, field, progress)
    return _arrow(file, name, field, progress)


def _decode(raw: bytes, name: str, line: int, field: str) -> str:
    if b"\x00" in raw:
        raise file_error(field, f"{name} line {line}: binary data (a NUL byte), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise file_error(field, f"{name} line {line}: not UTF-8 text (byte {exc.start + 1})") from None


def parse_json(text: str, name: str, line: int, limits: Limits, field: str) -> Any:
    """The JSON value in `text`, a BadRecord when it is not JSON; InvalidFile when nested past the limit."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise file_error(field, f"{name} line {line}: JSON nested too deeply") from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            return BadRecord(f"not valid JSON: {exc.msg} (character {exc.pos + 1})")
        return BadRecord(f"not valid JSON: {exc}")
    # Only a text holding more brackets than the limit can nest past it (counting them is ~100x cheaper than a walk).
    if text.count("[") + text.count("{") > limits.max_depth and _depth(value, limits.max_depth) > limits.max_depth:
        raise file_error(field, f"{name} line {line}: JSON nested deeper than {limits.max_depth} levels")
    return value


def _depth(value: Any, limit: int, level: int = 1) -> int:
    if level > limit:
        return level
    if isinstance(value, dict):
        return max((_depth(v, limit, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, limit, level + 1) for v in value), default=level)
    return level


def _jsonl(file: Path, name: str, limits: Limits, field: str, progress: Progress) -> Iterator[tuple[int, Any]]:
    try:
        fh = file.open("rb")
    except OSError as exc:
        raise file_error(field, f"cannot read {name}: {exc.strerror}") from None
    with fh:
        line = 0
        while True:
            raw = fh.readline(limits.max_line_bytes + 1)
            if not raw:
                return
            line += 1
            progress(len(raw))
            if len(raw) > limits.max_line_bytes:
                raise file_error(field, f"{name} line {line}: longer than {limits.max_line_bytes:,} bytes")
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text = _decode(raw, name, line, field)
            if not text.strip():
                continue
            yield line, parse_json(text, name, line, limits, field)


def _json(file: Path, name: str, limits: Limits, field: str, progress: Progress) -> Iterator[tuple[int, Any]]:
    size = file.stat().st_size
    if size > limits.max_json_bytes:
        raise file_error(
            field, f"{name} is {size:,} bytes; a JSON array is read whole up to {limits.max_json_bytes:,}: use JSONL"
        )
    raw = file.read_bytes()
    progress(len(raw))
    text = _decode(raw.removeprefix(b"\xef\xbb\xbf"), name, 1, field)
    value = parse_json(text, name, 1, limits, field)
    if isinstance(value, BadRecord):
        raise file_error(field, f"{name}: {value.message}")
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise file_error(field, f"{name}: a JSON file must hold an array of records (or JSONL, one per line)")
    for number, record in enumerate(value, start=1):
        yield number, record


def _csv(file: Path, name: str, limits: Limits, field: str, progress: Progress) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(limits.max_line_bytes)
    try:
        fh = file.open("rb")
    except OSError as exc:
        raise file_error(field, f"cannot read {name}: {exc.strerror}") from None
    with fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.DictReader(text)
        last = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise file_error(field, f"{name} line {reader.line_num + 1}: not UTF-8 text") from None
            except csv.Error as exc:
                raise file_error(field, f"{name} line {reader.line_num}: {exc}") from None
            position = fh.tell()
            progress(position - last)
            last = position
            if any("\x00" in (value or "") for value in row.values() if isinstance(value, str)):
                raise file_error(field, f"{name} line {reader.line_num}: binary data (a NUL byte), not text")
            if None in row:
                yield reader.line_num, BadRecord("more values than columns")
                continue
            # An empty cell is an absent field: a CSV holding several formats leaves the other columns empty.
            yield (
                reader.line_num,
                {
                    key: _csv_value(value, name, reader.line_num, limits, field)
                    for key, value in row.items()
                    if value not in ("", None)
                },
            )


def _csv_value(value: str | None, name: str, line: int, limits: Limits, field: str) -> Any:
    """A CSV cell; one holding a JSON array or object (chat messages written into a column) is parsed."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        parsed = parse_json(stripped, name, line, limits, field)
        return value if isinstance(parsed, BadRecord) else parsed
    return value


def _pyarrow(what: str):
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ModuleNotFoundError:
        raise MissingDependency(f"reading {what} needs pyarrow: run `{DATA_INSTALL}`") from None
    return pyarrow


def _batches(batches, name: str, field: str, progress: Progress, size: int, rows: int) -> Iterator[tuple[int, Any]]:
    """The records of Arrow record batches; `size` bytes are reported as read in proportion to `rows`."""
    pa = _pyarrow("Parquet and Arrow files")
    number = 0
    try:
        for batch in batches:
            if rows:
                progress(size * batch.num_rows // rows)
            for record in batch.to_pylist():
                number += 1
                yield number, record
    except (pa.ArrowException, OSError) as exc:
        raise file_error(field, f"{name} record {number + 1}: cannot be read ({exc})") from None


def _parquet(file: Path, name: str, field: str, progress: Progress) -> Iterator[tuple[int, Any]]:
    pa = _pyarrow("Parquet files")
    try:
        parquet = pa.parquet.ParquetFile(file)
        rows = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise file_error(field, f"{name}: not a readable Parquet file ({exc})") from None
    return _batches(parquet.iter_batches(batch_size=1024), name, field, progress, file.stat().st_size, rows)


def _arrow(file: Path, name: str, field: str, progress: Progress) -> Iterator[tuple[int, Any]]:
    pa = _pyarrow("Arrow files")
    try:
        source = pa.memory_map(str(file))
        try:
            reader = pa.ipc.open_stream(source)  # what `datasets` save_to_disk writes
            rows = None
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_file(source)
            rows = reader.num_record_batches
    except (pa.ArrowException, OSError) as exc:
        raise file_error(field, f"{name}: not a readable Arrow file ({exc})") from None
    batches = (reader.get_batch(i) for i in range(rows)) if rows is not None else iter(reader)
    progress(file.stat().st_size)
    return _batches(batches, name, field, progress, 0, 0)
