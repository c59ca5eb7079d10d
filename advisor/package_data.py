"""Where the data shipped with advisor lives: rubrics and worked examples.

In an installed wheel they sit inside the package (`advisor/rubrics`,
`advisor/examples`, put there by hatch's force-include); in a source or editable
checkout they sit at the repository root (`<repo>/rubrics`, `<repo>/examples`).

The package folder is found from `__file__`, which is what
`importlib.resources.files("advisor")` returns for an installed (non-zipped)
package; importing importlib.resources would cost the CLI ~20 ms at every start.
"""

from __future__ import annotations

from pathlib import Path

from .errors import AdvisorError

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` shipped with advisor, wherever this installation keeps it."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise AdvisorError(
        (
            f"advisor's {name!r} data is missing (looked in {PACKAGE_DIR / name} and {PACKAGE_DIR.parent / name}); "
            f"reinstall advisor"
        )
    )
