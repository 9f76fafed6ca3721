"""What users do today: a render script that re-renders every project with the official SDK.

It does not know what changed, so for every manifest it calls ProduceEditingProjectVideo
(ProjectId + Timeline), one after another, as the render scripts in the wild do. The
ProjectIds come from reconciler's state file, standing in for the script's own list.

    python bench/naive_sdk.py --manifests DIR --state DIR --endpoint 127.0.0.1:PORT \
        --access-key ID:SECRET          # prints one JSON line: renders, errors, seconds

Needs the SDK (``pip install alibabacloud-vod20170321``; a test extra of reconciler).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models
from alibabacloud_vod20170321.client import Client


def manifests(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, Timeline) of every manifest, timelineFile resolved, the way a script would."""
    found: list[tuple[str, dict[str, Any]]] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.endswith((".yaml", ".yml")) or ".timeline." in file:
                continue
            path = Path(directory) / file
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if not doc:
                    continue
                spec = doc["spec"]
                timeline = spec.get("timeline")
                if timeline is None:
                    text = (path.parent / spec["timelineFile"]).read_text(encoding="utf-8")
                    timeline = yaml.safe_load(text)
                found.append((doc["metadata"]["name"], timeline))
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifests", type=Path, required=True)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--endpoint", required=True, help="host:port of the VOD endpoint")
    ap.add_argument("--access-key", required=True, metavar="ID:SECRET")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    key_id, _, secret = args.access_key.partition(":")
    client = Client(
        Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=args.endpoint,
            protocol="http",
        )
    )
    state = json.loads((args.state / "state.json").read_text(encoding="utf-8"))
    ids = {name: entry["project_id"] for name, entry in state["projects"].items()}
    renders = errors = 0
    for name, timeline in manifests(args.manifests):
        request = models.ProduceEditingProjectVideoRequest(
            project_id=ids[name], timeline=json.dumps(timeline, separators=(",", ":"))
        )
        try:
            client.produce_editing_project_video(request)
            renders += 1
        except Exception as exc:  # a script would log and go on
            errors += 1
            print(f"{name}: {exc}", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(json.dumps({"renders": renders, "errors": errors, "seconds": round(seconds, 2)}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
