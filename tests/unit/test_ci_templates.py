"""The CI templates (docs/ci/) and .pre-commit-hooks.yaml parse, and every `reconciler ...`
command they run is run here, in the same order, against the embedded emulator."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.adapters.emulator import Emulator
from reconciler.cli.main import main

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "docs" / "ci" / "github-actions.yml"
GITLAB = REPO / "docs" / "ci" / "gitlab-ci.yml"
PRE_COMMIT = REPO / ".pre-commit-hooks.yaml"
_CONTROL = {";", "&&", "||", "|", "&", "(", ")", "\n"}
_REDIRECT = (">", ">>", "<", "2>", "&>")
# What each verb the templates use must exit with on a fresh repository (state: empty).
KNOWN_VERBS = {"validate", "plan", "apply", "status"}


def reconciler_commands(script: str) -> list[list[str]]:
    """Every `reconciler ...` simple command in a shell snippet, without its redirections."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        if line.strip().startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in [*lexer, ";"]:
            if token in _CONTROL:
                if current and current[0] == "reconciler":
                    commands.append(current[1:])
                current = []
            else:
                current.append(token)
    return [_strip_redirects(c) for c in commands]


def _strip_redirects(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _REDIRECT:
            skip = True
        else:
            out.append(token)
    return out


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or []]


def github_jobs() -> dict[str, list[list[str]]]:
    data = yaml.safe_load(GITHUB.read_text())
    return {
        name: [cmd for step in job["steps"] for cmd in reconciler_commands(step.get("run", ""))]
        for name, job in data["jobs"].items()
    }


def gitlab_jobs() -> dict[str, list[list[str]]]:
    data = yaml.safe_load(GITLAB.read_text())
    before = _lines(data.get("default", {}).get("before_script"))
    jobs: dict[str, list[list[str]]] = {}
    for name, job in data.items():
        if isinstance(job, dict) and "script" in job:
            snippets = [*before, *_lines(job["script"]), *_lines(job.get("after_script"))]
            jobs[name] = [cmd for s in snippets for cmd in reconciler_commands(s)]
    return jobs


# what both templates need: OIDC role credentials, and the state pushed back without a CI loop
BOTH_TEMPLATES = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "reconciler[credentials]",
    "[skip ci]",
    "pull -q --rebase",
    "git add state/",
)


def test_the_extractor_understands_shell() -> None:
    script = (
        'reconciler plan --output markdown >> "$GITHUB_STEP_SUMMARY"\n'
        "rc=0; reconciler apply || rc=$?\n"
        "pip install 'reconciler[credentials]'\n"
        "# reconciler commented out\n"
        "reconciler \\\n  status\n"
    )
    assert reconciler_commands(script) == [["plan", "--output", "markdown"], ["apply"], ["status"]]


def test_github_template_shape() -> None:
    data = yaml.safe_load(GITHUB.read_text())
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    plan_job, apply_job = data["jobs"]["plan"], data["jobs"]["apply"]
    assert "pull_request" in plan_job["if"]
    assert apply_job["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    assert apply_job["permissions"]["id-token"] == "write"
    runs = "\n".join(step.get("run", "") for step in plan_job["steps"])
    assert 'reconciler plan --output markdown >> "$GITHUB_STEP_SUMMARY"' in runs
    text = GITHUB.read_text()
    for needle in BOTH_TEMPLATES:
        assert needle in text, needle


def test_gitlab_template_shape() -> None:
    data = yaml.safe_load(GITLAB.read_text())
    assert data["reconciler-apply"]["resource_group"] == "reconciler"
    assert "merge_request_event" in data["reconciler-plan"]["rules"][0]["if"]
    assert "plan.md" in data["reconciler-plan"]["artifacts"]["paths"]
    text = GITLAB.read_text()
    for needle in (*BOTH_TEMPLATES, "id_tokens"):
        assert needle in text, needle


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a CI checkout looks like: manifests/ (state/ appears with the first apply)."""
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    for var in ("RECONCILER_STATE", "RECONCILER_MANIFESTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_ENDPOINT", "emulator")
    return tmp_path


def run_all(commands: list[list[str]], capsys: pytest.CaptureFixture[str]) -> str:
    out = []
    for argv in commands:
        assert argv and argv[0] in KNOWN_VERBS, f"no expectation for `reconciler {argv}`"
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, f"reconciler {shlex.join(argv)} exited {code}:\n{captured.err}"
        out.append(captured.out)
    return "".join(out)


@pytest.mark.parametrize("template", ["github", "gitlab"])
def test_every_template_command_runs(
    template: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = github_jobs() if template == "github" else gitlab_jobs()
    plan_cmds = jobs["plan" if template == "github" else "reconciler-plan"]
    apply_cmds = jobs["apply" if template == "github" else "reconciler-apply"]
    assert [c[0] for c in plan_cmds].count("plan") >= 1 and ["apply"] in apply_cmds
    assert sum(len(cmds) for cmds in jobs.values()) == len(plan_cmds) + len(apply_cmds)

    # A merge request before anything was applied: the plan shows five creations.
    before = run_all(plan_cmds, capsys)
    assert "| create | 5 |" in before
    # The main branch: apply (five renders), then the status the job prints.
    run_all(apply_cmds, capsys)
    emulator = Emulator.embedded(workspace / "state")
    try:
        renders = [c for c in emulator.calls() if c.action == "ProduceEditingProjectVideo"]
    finally:
        emulator.close()
    assert len(renders) == 5
    assert (workspace / "state" / "state.json").is_file()  # what the job commits back
    # The next merge request with no manifest change: nothing to do.
    after = run_all(plan_cmds, capsys)
    assert "| create | 0 |" in after and "| render | 0 |" in after


def test_pre_commit_hooks(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hooks = {h["id"]: h for h in yaml.safe_load(PRE_COMMIT.read_text())}
    assert set(hooks) == {"reconciler-validate", "reconciler-plan"}
    for hook in hooks.values():
        assert hook["pass_filenames"] is False
        assert hook["language"] == "python"
        assert hook["files"] == r"\.(ya?ml|json)$"
        argv = shlex.split(hook["entry"])
        assert argv[0] == "reconciler"
        run_all([argv[1:]], capsys)
    assert hooks["reconciler-validate"]["entry"] == "reconciler validate"
