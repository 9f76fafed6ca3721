"""``reconciler schema``: print the manifest JSON Schema so editors validate while you type.

Write it into the repository and point yaml-language-server (VS Code YAML, Neovim, ...) at it,
either per file with a first-line comment::

    reconciler schema > reconciler.schema.json
    # yaml-language-server: $schema=../reconciler.schema.json

or for every manifest in the editor settings (``"yaml.schemas": {"./reconciler.schema.json":
"manifests/**/*.yaml"}``). The schema rejects unknown ``metadata``/``spec`` keys and lets
unknown keys inside ``timeline``, ``produceConfig``, ``mediaMetadata`` and ``userData`` through,
like ``reconciler validate``; the checks a schema cannot express (``In < Out``, the userData
size, unique names) are left to ``validate``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reconciler.core.models import manifest_json_schema

_EPILOG = """\
use it from a manifest:  # yaml-language-server: $schema=PATH/TO/reconciler.schema.json
or in editor settings:   "yaml.schemas": {"./reconciler.schema.json": "manifests/**/*.yaml"}"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the manifest JSON Schema (for editors)",
        description="Print the JSON Schema (draft 2020-12) of a reconciler/v1 manifest.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--out", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
