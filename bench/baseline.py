"""Benchmark floor (a): read every byte under a directory and hash it, nothing else.

Run as its own process, like the CLI, so both sides pay the same interpreter start-up:

    python bench/baseline.py DIR        # prints "<files> files, <bytes> bytes, <digest>"

It walks like the loader (sorted ``os.scandir``, hidden names skipped), reads each file whole
and feeds it to one SHA-256: the least any tool that "looks at everything" must do.
"""

from __future__ import annotations

import hashlib
import os
import sys


def walk(top: str, out: list[str]) -> None:
    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            walk(entry.path, out)
        else:
            out.append(entry.path)


def main(argv: list[str]) -> int:
    files: list[str] = []
    walk(argv[0], files)
    digest = hashlib.sha256()
    size = 0
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        size += len(data)
        digest.update(data)
    print(f"{len(files)} files, {size} bytes, {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
