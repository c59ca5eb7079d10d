"""Dataset inspection (`advisor inspect-data`): formats, validity, tokens, duplicates, evaluation overlap,
personal data and secrets (masked), the card's licence and quality signals, streamed over the data.

The contract (`DatasetReport`) imports only pydantic; the readers and detectors import numpy, pyarrow,
phonenumbers and detect-secrets inside the call (`pip install 'advisor[data]'`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contract import DatasetReport

__all__ = ["inspect_dataset", "DatasetReport"]


def __getattr__(name: str):
    if name == "inspect_dataset":
        from .inspect import inspect_dataset

        return inspect_dataset
    if name == "DatasetReport":
        from .contract import DatasetReport

        return DatasetReport
    raise AttributeError(name)
