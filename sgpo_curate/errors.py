"""The error type for bad input, so the CLI can tell it from a bug.

`InputError` means the user asked for something that cannot work (a bad flag value, a folder that is not a
profiling run, a resume with other settings) and its message says what and how to fix it: the CLI prints
it and exits 2. Any other exception is a bug or an outage and keeps its traceback. It subclasses
`ValueError`, so `except ValueError` in user code still catches it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input; the message names the value or file and the fix (CLI: no traceback, exit code 2)."""
