"""Every command, config and Python example the README and docs/ show is checked, so a renamed key or option fails
here instead of rotting in the docs.

- ``gan-lightning ...`` lines of ```bash / ```sh / ```console blocks (continuation lines joined, comments and ``$ ``
  prompts stripped): ``train`` and ``sweep`` with ``--dry-run`` (config resolved and validated, data, model and
  trainer built, nothing trained); ``sample``, ``evaluate``, ``translate``, ``project``, ``upscale``,
  ``interpolate`` and ``compare`` against tiny runs made once per session (placeholders such as CKPT, RUN, DIR and
  paths like ``runs/X/checkpoints/last.ckpt`` become the tiny run's; every option the line gives is kept, so an
  unknown option or key fails); ``list``, ``config`` and ``--help`` as they are.
- ```yaml blocks: validated as a sweep file (they have a ``command``) or as an experiment, through the project's
  own loaders (a block with only some sections is merged onto a shipped experiment using the same model or data).
- ```python blocks: run in a subprocess in a temporary folder (with the file's earlier blocks, which they build
  on) when they are complete; a fragment that uses names it never defines (``self``, ``real_images``) is skipped
  and says which.

Each check is its own test, named ``FILE:LINE``. Lines known to fail today are listed in KNOWN_FAILURES with why:
they are strict xfails, so a fixed line fails until its entry is removed.
"""

from __future__ import annotations

import ast
import builtins
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_lightning import config as config_lib
from gan_lightning.cli import main
from tests.conftest import SHARED_MNIST, write_fake_mnist

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL_BLOCKS = ("bash", "sh", "shell", "console")
PYTHON_TIMEOUT_S = 60

# (file, the command or block's first line as written) -> why it fails today. Strict: a fixed line fails its xfail.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Documented:
    file: str  # relative to the repository
    line: int
    kind: str  # "command", "yaml" or "python"
    text: str  # the command (continuations joined, comment and prompt stripped) or the block's source
    earlier: str = ""  # python: the file's earlier complete blocks, which this one builds on

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _blocks(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line of the first content line, language, content lines) of each fenced block."""
    blocks, language, start, content = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if fence and language is None:
            language, start, content = fence.group(2).lower(), number + 1, []
        elif fence and not fence.group(2):
            blocks.append((start, language, content))
            language = None
        elif language is not None:
            content.append(line)
    return blocks


def _shell_commands(start: int, language: str, lines: list[str]) -> list[tuple[int, str]]:
    """(line, command) of each gan-lightning command in a shell block."""
    commands, pending, first = [], "", 0
    for offset, line in enumerate(lines):
        text = line.strip()
        if language == "console" and not pending:
            if not text.startswith("$ "):
                continue  # output, not a command
        if not pending:
            first = start + offset
            text = text.removeprefix("$ ")
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        line, pending = pending + text, ""
        # a chain (`pip install ... && gan-lightning train ...`): each gan-lightning command in it
        commands += [(first, part.strip()) for part in re.split(r"&&|;", line) if part.strip().startswith(
            "gan-lightning")]
    return commands


def _undefined_names(source: str) -> list[str]:
    """Names the code reads but never binds (imports, assignments, definitions, parameters) nor gets from
    builtins: a fragment of a larger program."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ["<syntax>"]
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    loaded = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)]
    return sorted(set(loaded) - bound)


def documented() -> list[Documented]:
    found = []
    for path in DOCS:
        name = str(path.relative_to(REPO))
        earlier = ""
        for start, language, lines in _blocks(path):
            if language in SHELL_BLOCKS:
                found += [Documented(name, line, "command", command)
                          for line, command in _shell_commands(start, language, lines)]
            elif language in ("yaml", "yml"):
                found.append(Documented(name, start, "yaml", "\n".join(lines)))
            elif language == "python":
                source = "\n".join(lines)
                found.append(Documented(name, start, "python", source, earlier))
                if not _undefined_names(earlier + "\n" + source):
                    earlier += "\n" + source
    return found


def _marks(item: Documented) -> list:
    first = item.text.strip().splitlines()[0] if item.text.strip() else ""
    reason = KNOWN_FAILURES.get((item.file, first))
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


def _params(kind: str) -> list:
    return [pytest.param(item, id=item.id, marks=_marks(item)) for item in documented() if item.kind == kind]


def test_known_failures_name_documented_lines() -> None:
    present = {(item.file, item.text.strip().splitlines()[0]) for item in documented() if item.text.strip()}
    assert sorted(set(KNOWN_FAILURES) - present) == []  # a line that changed or went: its entry goes too


def test_the_extraction(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n```bash\ngan-lightning train a \\\n    b=1   # why\necho no\n```\n"
                    "```console\n$ gan-lightning list\nexperiments ...\n$ ls\n```\n```\ngan-lightning untagged\n```\n")
    blocks = _blocks(page)
    assert [(start, language) for start, language, _ in blocks] == [(3, "bash"), (8, "console"), (13, "")]
    assert _shell_commands(*blocks[0]) == [(3, "gan-lightning train a b=1   # why")]
    assert _shell_commands(*blocks[1]) == [(8, "gan-lightning list")]


# --- the tiny runs the checkpoint commands use ----------------------------------------------------------------
# Which tiny run a command gets when its path does not name a shipped experiment (CKPT, RUN, PSNR.ckpt ...).
_STYLE_OPTIONS = ("--truncation", "--style-mix", "--mix-layers", "--noise", "--w-plus", "ppl")
_CONDITIONAL_OPTIONS = ("--label", "--attributes", "intra_fid", "cas")


class TinyRuns:
    """Shipped experiments trained a few batches at tiny widths on tiny offline data, made when first asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs: dict[str, Path] = {}

    def run(self, experiment: str) -> Path:
        if experiment not in self.runs:
            from tests.test_golden import _model

            raw = OmegaConf.load(REPO / "experiments" / f"{experiment}.yaml")
            run = self.root / "runs" / experiment
            with pytest.MonkeyPatch.context() as patch:
                data = self._data(experiment, raw, patch)
                code = main(["train", experiment, f"run.dir={run}", "run.quiet=true", "trainer.accelerator=cpu",
                             f"trainer.max_steps={raw.model.get('n_critic', 1) + 1}", "trainer.max_epochs=null",
                             "callbacks.samples.every_n_steps=1", "callbacks.samples.n=8",
                             # what evaluate uses where the doc line does not say: small, and enough for
                             # every metric (intra-FID: >= 2 samples per class)
                             "callbacks.metrics.n_samples=64", "callbacks.metrics.n_real=64",
                             "callbacks.metrics.cas_per_class=2", "callbacks.metrics.cas_epochs=1",
                             "callbacks.metrics.batch_size=32", f"callbacks.metrics.cache_dir={self.root / 'stats'}",
                             "callbacks.metrics.enabled=false", *_model(raw), *data])
            assert code == 0, f"the tiny {experiment} run failed"
            self.runs[experiment] = run
        return self.runs[experiment]

    def data_overrides(self, experiment: str) -> list[str]:
        """The tiny-model and tiny-data overrides of an experiment (train --dry-run puts the doc's after them)."""
        from tests.test_golden import _model

        raw = OmegaConf.load(REPO / "experiments" / f"{experiment}.yaml")
        with pytest.MonkeyPatch.context() as patch:
            return [*_model(raw), *self._data(experiment, raw, patch)]

    def _data(self, experiment: str, raw, patch: pytest.MonkeyPatch) -> list[str]:
        from tests.test_golden import _data

        # the embedded digits come sorted by class: a random 200 hold every class (intra_fid, cas need them all)
        digits = ["data.limit=200", "data.limit_seed=0"] if raw.data.name == "digits" else []
        return [*_data(experiment, raw, self.root / "data" / experiment, patch), *digits]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> tuple[Path, TinyRuns]:
    """A working folder as a user's checkout would have it: data/MNIST (fake) for the default roots, and
    ../shared/data (the shared MNIST where there is one, else fake) for the docs' offline lines."""
    root = tmp_path_factory.mktemp("docs")
    work = root / "work"
    write_fake_mnist(work / "data")
    write_fake_mnist(work / "data", split="test")
    shared = root / "shared" / "data"
    if SHARED_MNIST.is_dir():
        shared.parent.mkdir()
        shared.symlink_to(SHARED_MNIST)
    else:
        write_fake_mnist(shared)
        write_fake_mnist(shared, split="test")
    return work, TinyRuns(root)


def _experiment_for(words: list[str], default: str) -> str:
    """The shipped experiment a path names (runs/X/...), else one the options need, else ``default``."""
    shipped = set(config_lib.experiment_names())
    for word in words:
        match = re.search(r"runs/([\w.-]+)", word)
        if match and match.group(1) in shipped:
            return match.group(1)
    if any(word.startswith(option) for word in words for option in _STYLE_OPTIONS):
        return "stylegan2_digits"
    if any(option in word for word in words for option in _CONDITIONAL_OPTIONS):
        return "cgan_mnist"
    return default


_DEFAULT_FIXTURE = {"sample": "dcgan_digits", "evaluate": "dcgan_digits", "project": "stylegan2_digits",
                    "translate": "pix2pix_edges2digits", "upscale": "srresnet_digits", "compare": "dcgan_digits"}
_CHECKPOINT = re.compile(r"^(CKPT\w*|CHECKPOINT|\$\{?RUN\}?/checkpoints/last\.ckpt|[\w.-]+\.ckpt|"
                         r"(\S*/)?runs/[\w.-]+(/[\w.${}-]+)*/checkpoints/[\w.=-]+\.ckpt)$")
_RUN_DIR = re.compile(r"^(RUN|RUN_DIR|\$\{?RUN\}?|(\S*/)?runs/[\w./-]+)$")


def _write_images(folder: Path, checkpoint_run: Path) -> None:
    """Two images the tiny run's data could hold: its own grid cut to the sample size, grey or RGB as it trained."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.load(checkpoint_run / "config.yaml")
    size = int(config.data.get("crop_size") or config.data.get("image_size") or 28)
    channels = int(config.data.get("channels") or 1)
    mode = "L" if channels == 1 else "RGB"
    for index in range(2):
        Image.new(mode, (size, size), color=(60 * index + 40) if mode == "L" else (40, 60 * index, 90)).save(
            folder / f"image_{index}.png")


def _substitute(words: list[str], work: Path, runs: TinyRuns) -> list[str]:
    """The doc's words with its placeholders and paths turned into the tiny runs' (every option kept)."""
    command = words[1]
    experiment = _experiment_for(words, _DEFAULT_FIXTURE.get(command, "dcgan_digits"))
    out: list[str] = ["gan-lightning", command]
    checkpoints_seen = 0
    for index, word in enumerate(words[2:], 2):
        previous = words[index - 1]
        if previous == "--out" and word.endswith(".ckpt"):
            out.append(str(work / "outputs" / Path(word).name))  # interpolate's output: a new file
        elif previous in ("--input",):
            folder = work / "inputs" / re.sub(r"\W+", "_", word)
            _write_images(folder, runs.run(experiment))
            out.append(str(folder))
        elif previous == "--out":
            out.append(str(work / "outputs" / re.sub(r"[^\w.]+", "_", word)))
        elif _CHECKPOINT.match(word) and not word.startswith("-"):
            if command == "interpolate":  # two generators of one architecture: the PSNR model and the GAN
                experiment = ("srresnet_digits", "srgan_digits")[min(checkpoints_seen, 1)]
            checkpoints_seen += 1
            out.append(str(runs.run(experiment) / "checkpoints" / "last.ckpt"))
        elif command == "compare" and _RUN_DIR.match(word):
            out.append(_compare_folder(word, work, runs))
        elif not re.fullmatch(r"\$\{?\w+\}?", word):  # a variable standing for options ($MODE_ARGS): left out
            out.append(re.sub(r"\$\{?(\w+)\}?", "0", word))  # a loop variable ($SEED): its first value
    return out


def _train_word(word: str, experiment: str, work: Path, runs: TinyRuns) -> str:
    """An override of a documented train line with its placeholders made real: DIR (a data root) -> the tiny
    data, a run's checkpoint -> the tiny run's, run.dir=$RUN -> a fresh folder, $SEED (a loop variable) -> 0."""
    key, _, value = word.partition("=")
    if value in ("DIR", "ROOT"):
        return f"{key}={runs.root / 'data' / experiment}"
    if _CHECKPOINT.match(value):
        return f"{key}={runs.run(_experiment_for([value], experiment)) / 'checkpoints' / 'last.ckpt'}"
    if key == "run.dir" and value.startswith("$"):
        return f"{key}={work / 'runs' / 'documented'}"
    return re.sub(r"\$\{?(\w+)\}?", "0", word)


def _compare_folder(word: str, work: Path, runs: TinyRuns) -> str:
    """A run directory, or a folder of runs (a sweep's), made of the tiny runs."""
    name = re.search(r"runs/([\w.-]+)", word)
    if name and name.group(1) in config_lib.experiment_names():
        return str(runs.run(name.group(1)))
    folder = work / "sweeps" / re.sub(r"\W+", "_", word)
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for index, experiment in enumerate(("dcgan_digits", "gan_grid")):
            shutil.copytree(runs.run(experiment), folder / f"trial-{index:03d}")
    return str(folder)


# Sizes capped so that the file stays fast: the option is still parsed and used, on fewer samples or steps.
_CAPS = {("evaluate", "--n"): 128, ("project", "--steps"): 2}  # ppl needs >= 100


def _within_budget(argv: list[str]) -> list[str]:
    capped = list(argv)
    for (command, option), cap in _CAPS.items():
        if capped[0] != command:
            continue
        if option in capped:
            index = capped.index(option) + 1
            capped[index] = str(min(int(capped[index]), cap))
        elif command == "project":  # its default (1000 steps) is a real projection
            capped += [option, str(cap)]
    return capped


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # --help
        return int(stop.code or 0)


@pytest.mark.parametrize("item", _params("command"))
def test_documented_command(item: Documented, workspace, tmp_path: Path, monkeypatch, capsys) -> None:
    work, runs = workspace
    monkeypatch.chdir(work)
    words = shlex.split(item.text, comments=True)
    assert words[0] == "gan-lightning" and len(words) >= 2, item.text
    command = words[1]
    if "--help" in words or "-h" in words or command in ("list", "config"):
        argv = words[1:]
    elif command == "train":
        experiment = words[2]
        base = runs.data_overrides(experiment) if experiment in config_lib.experiment_names() else []
        doc = [_train_word(word, experiment, work, runs) for word in words[3:]
               if not re.fullmatch(r"\$\{?\w+\}?", word)]  # a variable standing for options: left out
        argv = ["train", experiment, *base, *doc, *([] if "--dry-run" in doc else ["--dry-run"])]
        if "--resume" in doc:  # a run to continue: the tiny one, where the line's run.dir resolves, in a folder
            # of its own (in the shared one it would stand in the way of every later line training that experiment)
            (tmp_path / "data").symlink_to(work / "data")
            monkeypatch.chdir(tmp_path)
            run_dir = tmp_path / config_lib.load_experiment(experiment, [*base, *(w for w in doc if "=" in w)]).run.dir
            shutil.copytree(runs.run(experiment), run_dir)
    elif command == "sweep":
        argv = [*words[1:], *([] if "--dry-run" in words else ["--dry-run"])]
    else:
        argv = _substitute(words, work, runs)[1:]
    code = _run(_within_budget(argv))
    out, err = capsys.readouterr()
    assert code == 0, f"{item.id}: {item.text}\n  ran: gan-lightning {' '.join(argv)}\n  {err.strip()[-1500:]}"


# --- YAML and Python blocks ---------------------------------------------------------------------------------


def _base_for(fragment: dict) -> str:
    """A shipped experiment using the fragment's model (or data) name, to merge a partial experiment onto."""
    for section in ("model", "data"):
        name = (fragment.get(section) or {}).get("name")
        for experiment, path in config_lib.experiment_sources().items():
            if name and OmegaConf.load(path)[section].name == name:
                return experiment
    return "dcgan_digits"


@pytest.mark.parametrize("item", _params("yaml"))
def test_documented_yaml(item: Documented, tmp_path: Path, monkeypatch) -> None:
    from gan_lightning import sweeps

    monkeypatch.chdir(tmp_path)
    spec = OmegaConf.to_container(OmegaConf.create(item.text))
    path = tmp_path / "documented.yaml"
    if "command" in spec:  # a W&B sweep file
        path.write_text(item.text)
        sweeps.load_sweep(path)
        return
    sections = set(spec)
    assert sections <= set(config_lib.SECTIONS), f"{item.id}: not an experiment: {sorted(sections)}"
    if {"model", "data"} <= sections:
        path.write_text(item.text)
        config_lib.load_experiment(str(path))
        return
    base = OmegaConf.load(config_lib.resolve_experiment_path(_base_for(spec)))
    config_lib.validate(OmegaConf.merge(base, OmegaConf.create(item.text)))


@pytest.mark.parametrize("item", _params("python"))
def test_documented_python(item: Documented, workspace, tmp_path: Path) -> None:
    source = item.earlier + "\n" + item.text
    missing = _undefined_names(source)
    if missing:
        pytest.skip(f"a fragment: uses {', '.join(missing)} without defining them")
    work, _ = workspace
    (tmp_path / "example.py").write_text(source)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WANDB_MODE": "offline",
           "OMP_NUM_THREADS": "1"}
    try:
        result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=PYTHON_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{item.id}: still running after {PYTHON_TIMEOUT_S} s")
    assert result.returncode == 0, f"{item.id}:\n{result.stderr[-2000:]}"
