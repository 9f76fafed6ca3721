"""Synthetic manifest catalogues for the benchmarks: realistic, deterministic, fast to write.

A catalogue of N projects: 2-8 video clips (some with text effects), an audio bed, a produce
config, sometimes media metadata and user data, labels; spread over nested directories
(``<team>/<season>/<block>/``, <= 50 files per directory); about 4% of the files hold 2-3
documents (``---``) and about 2% of the projects keep their Timeline in a ``timelineFile``
(mostly JSON, some YAML beside the manifest).

    python bench/gen.py DIR --n 1000 [--seed 7]        # writes DIR/manifests

``Catalogue.edit(projects)`` rewrites the chosen manifests with a changed Timeline (one clip's
``Out`` grows by a second), which is what "a changed project" means in the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

TEAMS = ("growth", "social", "brand", "tutorials", "news", "sports", "kids", "music")
SEASONS = ("2023-q4", "2024-q1", "2024-q2", "2024-q3")
PER_DIR = 50


@dataclass(frozen=True)
class Project:
    name: str
    file: str  # manifest file, relative to the manifests root
    timeline_file: str | None  # relative to the manifest's directory, when split out


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def timeline(rng: random.Random, generation: int = 0) -> dict[str, object]:
    clips: list[dict[str, object]] = []
    for i in range(rng.randint(2, 8)):
        start = rng.randint(0, 30)
        clip: dict[str, object] = {
            "MediaId": _hex(rng),
            "In": start,
            "Out": start + rng.randint(2, 20) + (round(rng.random(), 1) if i % 3 else 0),
        }
        if rng.random() < 0.3:
            clip["Effects"] = [
                {
                    "Type": "Text",
                    "Content": f"Caption {rng.randint(1, 999)}",
                    "X": 0.1,
                    "Y": 0.8,
                    "FontSize": rng.choice((24, 36, 48)),
                    "FontColor": "#FFFFFF",
                    "TimelineIn": 0,
                    "TimelineOut": rng.randint(2, 6),
                }
            ]
        clips.append(clip)
    # The edit the benchmarks make: the last clip gets ``generation`` extra seconds.
    last = clips[-1]
    last["Out"] = float(last["Out"]) + generation  # type: ignore[arg-type]
    audio = {"MediaId": _hex(rng), "In": 0, "Out": rng.randint(20, 90), "TimelineIn": 0}
    return {
        "VideoTracks": [{"VideoTrackClips": clips}],
        "AudioTracks": [{"AudioTrackClips": [audio]}],
    }


def _flow(value: object) -> str:
    """A compact YAML flow value (JSON is valid YAML flow style)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _clip_lines(clip: dict[str, object]) -> list[str]:
    lines = [f"          - MediaId: {clip['MediaId']}"]
    lines += [f"            {k}: {clip[k]}" for k in ("In", "Out")]
    if "Effects" in clip:
        lines.append("            Effects:")
        for effect in clip["Effects"]:  # type: ignore[attr-defined]
            lines.append(f"              - {_flow(effect)}")
    return lines


def document(project: Project, generation: int, seed: int) -> str:
    rng = random.Random(f"{seed}:{project.name}")
    team = TEAMS[hash_name(project.name) % len(TEAMS)]
    tl = timeline(rng, generation)
    out = [
        "apiVersion: reconciler/v1",
        "kind: EditingProject",
        "metadata:",
        f"  name: {project.name}",
        f"  labels: {{team: {team}, tier: t{rng.randint(1, 3)}}}",
        "spec:",
        f"  title: {project.name.replace('-', ' ').title()}",
    ]
    if rng.random() < 0.5:
        out.append(f"  description: Cut {rng.randint(1, 99)} for the {team} team")
    if rng.random() < 0.3:
        out.append(f"  coverURL: https://example.com/covers/{project.name}.jpg")
    if project.timeline_file:
        out.append(f"  timelineFile: {project.timeline_file}")
    else:
        out += ["  timeline:", "    VideoTracks:", "      - VideoTrackClips:"]
        for clip in tl["VideoTracks"][0]["VideoTrackClips"]:  # type: ignore[index]
            out += _clip_lines(clip)
        audio = tl["AudioTracks"][0]["AudioTrackClips"][0]  # type: ignore[index]
        out += ["    AudioTracks:", f"      - AudioTrackClips: [{_flow(audio)}]"]
    out.append(f"  produceConfig: {{TemplateGroupId: {_hex(rng)}}}")
    if rng.random() < 0.5:
        out.append(f"  mediaMetadata: {{Title: {project.name}, Tags: '{team},promo'}}")
    if rng.random() < 0.3:
        out.append(f"  userData: {{Extend: {{campaign: {team}, build: {rng.randint(1, 999)}}}}}")
    return "\n".join(out) + "\n"


def hash_name(name: str) -> int:
    return sum(name.encode()) * 2654435761 % 2**32


def layout(n: int, seed: int = 7) -> list[Project]:
    """Where each of ``n`` projects lives (deterministic for ``n`` and ``seed``)."""
    rng = random.Random(seed)
    projects: list[Project] = []
    i = file_no = 0
    while i < n:
        team, season = TEAMS[file_no % len(TEAMS)], SEASONS[(file_no // 8) % len(SEASONS)]
        directory = f"{team}/{season}/b{file_no // (PER_DIR * 32):03d}"
        docs = 1 if rng.random() >= 0.04 else rng.randint(2, 3)
        stem = f"{team}-{file_no:06d}"
        file = f"{directory}/{stem}.yaml"
        for d in range(min(docs, n - i)):
            name = f"{stem}-{d}" if docs > 1 else stem
            split = docs == 1 and rng.random() < 0.02
            ext = ".timeline.yaml" if split and rng.random() < 0.25 else ".timeline.json"
            projects.append(Project(name, file, f"{stem}{ext}" if split else None))
            i += 1
        file_no += 1
    return projects


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _yaml_timeline(tl: dict[str, object]) -> str:
    return "\n".join(f"{k}: {_flow(v)}" for k, v in tl.items())


class Catalogue:
    """The projects of one catalogue under ``root`` and the edit generation of each."""

    def __init__(self, root: Path, n: int, seed: int = 7) -> None:
        self.root, self.seed = root, seed
        self.projects = layout(n, seed)
        self.generation = {p.name: 0 for p in self.projects}
        self._by_file: dict[str, list[Project]] = {}
        for p in self.projects:
            self._by_file.setdefault(p.file, []).append(p)

    def write(self) -> None:
        """Write every file."""
        for file in self._by_file:
            self._write_file(file, touched=set(self.generation))

    def edit(self, members: list[Project]) -> None:
        """Change the Timeline of ``members`` (one clip's ``Out`` grows by a second)."""
        for p in members:
            self.generation[p.name] += 1
        self._rewrite(members)

    def revert(self, members: list[Project]) -> None:
        """Undo every ``edit`` of ``members``: their files as ``write`` wrote them."""
        for p in members:
            self.generation[p.name] = 0
        self._rewrite(members)

    def _rewrite(self, members: list[Project]) -> None:
        names = {p.name for p in members}
        for file in sorted({p.file for p in members}):
            self._write_file(file, touched=names)

    def _write_file(self, file: str, touched: set[str]) -> None:
        docs = []
        for p in self._by_file[file]:
            gen = self.generation[p.name]
            docs.append(document(p, gen, self.seed))
            if p.timeline_file and p.name in touched:
                tl = timeline(random.Random(f"{self.seed}:{p.name}"), gen)
                target = self.root / os.path.dirname(file) / p.timeline_file
                body = json.dumps(tl, indent=1) if target.suffix == ".json" else _yaml_timeline(tl)
                _write(target, body + "\n")
        _write(self.root / file, "---\n".join(docs))


def count_files(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = size = 0
    for directory, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(directory, name))
    return files, size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    catalogue = Catalogue(args.dir / "manifests", args.n, args.seed)
    catalogue.write()
    files, size = count_files(args.dir / "manifests")
    print(
        f"{len(catalogue.projects)} projects in {files} files ({size / 1e6:.1f} MB) "
        f"under {args.dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
