"""Plant a bug, run tests, restore the file: does any test notice?

    python scripts/plant_bug.py sgpo_curate/profiling.py 'OLD TEXT' 'NEW TEXT' -- tests/test_profiling.py -k resume

Replaces the first occurrence of OLD by NEW in the file, runs pytest with the arguments after `--`,
puts the file back (always), and prints CAUGHT with the failing tests, or MISSED when all passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") != 3:
        sys.stderr.write(__doc__ or "")
        return 2
    path, old, new = Path(argv[0]), argv[1], argv[2]
    text = path.read_text()
    if old not in text:
        sys.stderr.write(f"{old!r} is not in {path}\n")
        return 2
    path.write_text(text.replace(old, new, 1))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv[4:]],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    finally:
        path.write_text(text)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    verdict = "CAUGHT" if proc.returncode else "MISSED"
    sys.stdout.write("\n  ".join([f"{verdict} {lines[-1] if lines else ''}", *failed]) + "\n")
    return 0 if proc.returncode else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
