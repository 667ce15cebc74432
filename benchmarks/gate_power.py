"""The CI gate's power, measured: realistic one-line bugs applied to a scratch copy, the gate run on each.

The project's files (tracked and untracked-but-not-ignored, as they are in the working tree) are copied to
a scratch folder. First the clean copy runs the gate (``.ci/gate``: the smoke table at the CI budget, then
``bench check`` against the bundled smoke reference), which must pass in both modes; then each mutation of
:data:`MUTATIONS` is applied by exact text replacement (every target text is checked to be there, exactly
as often as stated, before anything trains: if the code moved, the script stops and names what it did not
find), the gate runs, and the file is restored. Each run is checked in both modes: ``--mode exact`` and
``--mode statistical`` (what a user's CI on another platform gets). Harmless refactors must pass.

The artifact cache is shared by the runs (seeded by the clean run): a stage is retrained when its key, which
holds the code it runs (``harness.core.identity``), changed, so a mutation retrains exactly the stages whose
code it touched, as the gate itself would with a kept cache. ``--fresh-cache`` gives every run its own cache.

``--keep DIR`` keeps the scratch folder with every run's records; ``--recheck DIR`` then trains nothing and
checks those records again with the working tree's check code (both modes), so that two statistical tests
are compared on the very same runs.

Usage: python benchmarks/gate_power.py [--only NAME,...] [--fresh-cache] [--keep DIR | --recheck DIR]
       [--out benchmarks/results/gate_power.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    what: str
    edits: tuple[tuple[str, str, str], ...]  # (file, exact old text, new text); each old text must occur once
    harmless: bool = False


def one(name: str, area: str, what: str, file: str, old: str, new: str) -> Mutation:
    return Mutation(name, area, what, ((file, old, new),))


PIPE, ENGINE, EVAL = "harness/data/pipeline.py", "harness/train/engine.py", "harness/train/evaluation.py"
MUTATIONS: tuple[Mutation, ...] = (
    one(
        "crop-padding-off",
        "pipeline",
        "random crop without its 4-pixel padding",
        PIPE,
        "        pad: int = 4,\n",
        "        pad: int = 0,\n",
    ),
    one(
        "flip-off",
        "pipeline",
        "no horizontal flips",
        PIPE,
        "        flip: bool = True,\n",
        "        flip: bool = False,\n",
    ),
    one(
        "mean-channels-reversed",
        "pipeline",
        "normalisation mean in BGR order",
        PIPE,
        "self.mean = torch.tensor(mean, device=device)",
        "self.mean = torch.tensor(mean[::-1], device=device)",
    ),
    one(
        "no-momentum",
        "optimiser",
        "SGD without the recipe's momentum",
        ENGINE,
        "momentum=recipe.momentum, weight_decay",
        "weight_decay",
    ),
    one(
        "no-weight-decay",
        "optimiser",
        "SGD without the recipe's weight decay",
        ENGINE,
        "momentum=recipe.momentum, weight_decay=recipe.weight_decay,",
        "momentum=recipe.momentum,",
    ),
    one(
        "cosine-off-by-one",
        "schedule",
        "cosine reaches 0 one epoch early",
        ENGINE,
        "span = max(1, recipe.epochs - recipe.warmup_epochs)",
        "span = max(1, recipe.epochs - recipe.warmup_epochs - 1)",
    ),
    one(
        "eval-in-train-mode",
        "evaluation",
        "evaluation with BatchNorm in training mode",
        EVAL,
        "    model.eval()\n    out = {}",
        "    model.train()\n    out = {}",
    ),
    one(
        "eval-on-train-split",
        "evaluation",
        "the 'test' stream reads the training images",
        PIPE,
        '(ds.test_images, ds.test_labels) if split == "test"',
        '(ds.train_images, ds.train_labels) if split == "test"',
    ),
    one(
        "kd-teacher-not-softened",
        "distillation",
        "KD's temperature applied to the student only",
        "harness/kits/distill.py",
        "p_t = F.softmax(teacher_logits / temperature, dim=1)",
        "p_t = F.softmax(teacher_logits, dim=1)",
    ),
    one(
        "kd-no-t-squared",
        "distillation",
        "KD's T^2 factor dropped",
        "harness/kits/distill.py",
        'reduction="batchmean") * temperature**2',
        'reduction="batchmean")',
    ),
    one(
        "se-width-rounded",
        "attention",
        "SE hidden width rounded to a multiple of 8 (timm's default)",
        "plugins/methods/se.py",
        "rd_divisor=1, ",
        "",
    ),
    one(
        "se-hard-sigmoid",
        "attention",
        "SE gate: hard sigmoid instead of sigmoid",
        "plugins/methods/se.py",
        'bias=self.opts["bias"])',
        'bias=self.opts["bias"], gate_layer="hard_sigmoid")',
    ),
    one(
        "encodenet-target-is-input",
        "encodenet",
        "the autoencoder reconstructs its input, not the representative",
        "plugins/methods/encodenet/autoencoder.py",
        "F.mse_loss(self.model(x).float(), target.float())",
        "F.mse_loss(self.model(x).float(), x.float())",
    ),
    one(
        "encodenet-last-level-unfrozen",
        "encodenet",
        "the encoder's last level is left trainable",
        "plugins/methods/encodenet/autoencoder.py",
        "for level in model.levels[:split]:",
        "for level in model.levels[:split - 1]:",
    ),
    Mutation(
        "rename-local",
        "refactor",
        "a local variable of the training loop renamed",
        (
            (
                ENGINE,
                "        result = step(epoch, b, images, labels)\n",
                "        outcome = step(epoch, b, images, labels)\n",
            ),
            (ENGINE, "            tally.warm_up(began, result.n)\n", "            tally.warm_up(began, outcome.n)\n"),
            (ENGINE, "        tally.add(result)\n", "        tally.add(outcome)\n"),
        ),
        harmless=True,
    ),
    Mutation(
        "reorder-statements",
        "refactor",
        "KD's two independent softmaxes computed in the other order",
        (
            (
                "harness/kits/distill.py",
                "    log_p_s = F.log_softmax(student_logits / temperature, dim=1)\n"
                "    p_t = F.softmax(teacher_logits / temperature, dim=1)\n",
                "    p_t = F.softmax(teacher_logits / temperature, dim=1)\n"
                "    log_p_s = F.log_softmax(student_logits / temperature, dim=1)\n",
            ),
        ),
        harmless=True,
    ),
    Mutation(
        "channels-last-off",
        "numerics",
        "channels_last off by default: other kernels, other rounding, same math (exact mode must fall back, not fail)",
        (
            (
                "harness/run/prepare.py",
                "channels_last = True if req.channels_last is None",
                "channels_last = False if req.channels_last is None",
            ),
        ),
        harmless=True,
    ),
    Mutation(
        "docstring-edit",
        "refactor",
        "KD's loss docstring reworded",
        (
            (
                "harness/kits/distill.py",
                '"""Hinton\'s KD term: T^2 * KL(softmax(t/T) || softmax(s/T)), the batch mean of the per-sample KL."""',
                '"""The KD term of Hinton et al.: T^2 times the batch-mean KL '
                'from the softened teacher to the student."""',
            ),
        ),
        harmless=True,
    ),
)


def copy_project(dest: Path) -> None:
    """The working tree's tracked and untracked-not-ignored files, as they are now."""
    listed = (
        subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def check_targets(src: Path, mutations: list[Mutation]) -> None:
    """Every edit's old text occurs exactly once in its file; else stop, naming each that does not."""
    problems = []
    for m in mutations:
        for file, old, _ in m.edits:
            path = src / file
            found = path.read_text().count(old) if path.exists() else -1
            if found != 1:
                problems.append(
                    f"{m.name}: {file}: "
                    + ("no such file" if found < 0 else f"target text found {found} times, not once: {old!r}")
                )
    if problems:
        sys.exit("gate_power: the code moved; fix these mutations before measuring:\n  " + "\n  ".join(problems))


def apply(src: Path, m: Mutation) -> dict[Path, str]:
    originals: dict[Path, str] = {}
    for file, old, new in m.edits:
        path = src / file
        originals.setdefault(path, path.read_text())
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"gate_power: {m.name}: target text not found once in {file}: {old!r}")
        path.write_text(text.replace(old, new))
    return originals


@dataclass
class Verdict:
    outcome: str  # pass, fail, error
    detail: str


def gate(src: Path, out: Path, cache: Path, mode: str, *, train: bool = True) -> Verdict:
    """``.ci/gate OUT --mode MODE`` in the scratch copy; ``train=False`` runs only its check on the records
    already in ``out`` (the check line of ``.ci/gate``), with the check code of ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "BENCH": f"{sys.executable} -m harness", "BENCH_CACHE_DIR": str(cache)}
    command = (
        ["bash", ".ci/gate", str(out), "--mode", mode]
        if train
        else [
            sys.executable,
            "-m",
            "harness",
            "check",
            str(out),
            "--reference",
            "smoke",
            "--table",
            "smoke",
            "--mode",
            mode,
        ]
    )
    proc = subprocess.run(command, cwd=src, env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.splitlines()
    summary = next((line for line in reversed(lines) if re.fullmatch(r"\d+ passed, \d+ failed", line)), None)
    if summary is None:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return Verdict("error", f"exit {proc.returncode}: {tail[:200]}")
    fails = [line for line in lines if line.startswith("FAIL")]
    if proc.returncode == 0 and not fails:
        fallback = next((line for line in lines if line.startswith("platform differs")), "")
        return Verdict("pass", summary + (f" ({fallback[:150]})" if fallback else ""))
    return Verdict("fail", " | ".join(reason(line) for line in fails) or f"exit {proc.returncode}")


def reason(line: str) -> str:
    """A FAIL line, short: the row and what failed (the divergence, or the shifted numbers)."""
    name, _, text = line[len("FAIL  ") :].partition(": ")
    row = name.split("/")[-1]
    if "first divergence at " in text:
        return f"{row}: {text.split('first divergence at ', 1)[1][:160]}"
    shifted = [
        part.split(" (n=")[0].rsplit(" ", 1)[0]
        for part in text.split("; ")
        if "(shifted)" in part or "outside the band" in part
    ]
    if shifted:
        return f"{row}: " + ", ".join(shifted) + " shifted"
    return f"{row}: {text[:160]}"


def caught(m: Mutation | None, v: Verdict) -> str:
    expected_pass = m is None or m.harmless
    if v.outcome == "error":
        return "caught (crashed)" if not expected_pass else "WRONG (crashed)"
    if expected_pass:
        return "passed" if v.outcome == "pass" else "WRONG (failed)"
    return "caught" if v.outcome == "fail" else "missed"


def platform_line(out: Path) -> str:
    records = sorted(out.glob("*.json"))
    if not records:
        return "platform unknown"
    record = json.loads(records[0].read_text())
    platform = record.get("platform") or {}
    numerics = platform.get("numerics") or {}
    pinned = ", ".join(f"{lib} {numerics[lib]}" for lib in ("aten", "onednn", "mkl", "mkl_cnr") if numerics.get(lib))
    return (
        f"{platform.get('cpu')} (numerics {numerics.get('profile', '?')}: "
        f"{pinned}), {platform.get('threads')} thread(s), torch {platform.get('torch')}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated mutation names (default: all)")
    p.add_argument("--fresh-cache", action="store_true", help="a fresh artifact cache for every run")
    p.add_argument("--out", type=Path, help="also write the table here")
    p.add_argument("--keep", type=Path, help="keep the scratch folder here (default: a temporary one, removed)")
    p.add_argument(
        "--recheck",
        type=Path,
        metavar="KEPT",
        help="train nothing: check the records of a folder kept with --keep again, with this working "
        "tree's check code (to compare statistical tests on the same runs)",
    )
    p.add_argument(
        "--trained-at",
        metavar="COMMIT",
        help="with --recheck: the commit the kept records were trained at, for the report's header (the "
        "records do not say it)",
    )
    args = p.parse_args()
    chosen = list(MUTATIONS)
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {m.name for m in MUTATIONS})
        if unknown:
            sys.exit(
                f"gate_power: unknown mutation(s) {', '.join(unknown)}; known: {', '.join(m.name for m in MUTATIONS)}"
            )
        chosen = [m for m in MUTATIONS if m.name in names]
    if args.recheck and not (args.recheck / "runs" / "clean").is_dir():
        sys.exit(f"gate_power: --recheck {args.recheck}: no runs/clean in it; give a folder kept with --keep")
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="gate-power-"))
    src = scratch / "src"
    try:
        if args.recheck:  # the kept records, checked by this working tree's check code
            shutil.rmtree(src, ignore_errors=True)
            scratch.mkdir(parents=True, exist_ok=True)
            if scratch.resolve() != args.recheck.resolve():
                shutil.rmtree(scratch / "runs", ignore_errors=True)
                shutil.copytree(args.recheck / "runs", scratch / "runs")
        copy_project(src)
        if not args.recheck:  # a recheck applies no mutation: the code may have moved since the records were kept
            check_targets(src, chosen)
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        ).stdout.strip()
        budget = next(line for line in (src / ".ci/gate").read_text().splitlines() if "reproduce smoke" in line)
        started = datetime.now(timezone.utc)
        rows: list[tuple[str, str, str, str, str, float]] = []
        details: list[str] = []
        for m in [None, *chosen]:
            name = "clean (control)" if m is None else m.name
            originals = apply(src, m) if m is not None and not args.recheck else {}
            cache = scratch / ("cache" if not args.fresh_cache else f"cache-{name}")
            out = scratch / "runs" / name.split(" ")[0]
            t0 = time.perf_counter()
            try:
                exact = gate(src, out, cache, "exact", train=not args.recheck)
                statistical = gate(src, out, cache, "statistical", train=False)  # the records of this run
            finally:
                for path, text in originals.items():
                    path.write_text(text)
            seconds = time.perf_counter() - t0
            rows.append(
                (
                    name,
                    "-" if m is None else m.area + (" (must pass)" if m.harmless else ""),
                    caught(m, exact),
                    caught(m, statistical),
                    "" if m is None else m.what,
                    seconds,
                )
            )
            details.append(f"{name}\n  exact:       {exact.detail}\n  statistical: {statistical.detail}")
            print(f"{name}: exact {rows[-1][2]}, statistical {rows[-1][3]} ({seconds:.0f} s)", flush=True)
            if m is None and (exact.outcome, statistical.outcome) != ("pass", "pass"):
                sys.exit(
                    f"gate_power: the clean copy does not pass the gate (exact: {exact.detail}; statistical: "
                    f"{statistical.detail}): regenerate the reference before measuring"
                )
        recheck = None
        if args.recheck:
            created = min(json.loads(f.read_text())["created"] for f in (scratch / "runs" / "clean").glob("*.json"))
            recheck = (
                f"recheck: nothing trained; the records kept in {args.recheck} (trained {created}"
                + (f" at commit {args.trained_at}" if args.trained_at else "")
                + ") checked again with this working tree's check code"
            )
        text = render(
            rows,
            details,
            started,
            commit,
            budget,
            platform_line(scratch / "runs" / "clean"),
            args.fresh_cache,
            recheck,
        )
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def render(
    rows: list[tuple[str, str, str, str, str, float]],
    details: list[str],
    started: datetime,
    commit: str,
    budget: str,
    platform: str,
    fresh: bool,
    recheck: str | None = None,
) -> str:
    bugs = [r for r in rows[1:] if not r[1].endswith("(must pass)")]
    refactors = [r for r in rows[1:] if r[1].endswith("(must pass)")]
    head = [
        f"gate_power.py, {started:%Y-%m-%d %H:%M} UTC, commit {commit}, platform {platform}",
        *([recheck] if recheck else []),
        f"gate: .ci/gate ({budget.strip()}) then bench check --reference smoke --table smoke --mode exact|statistical",
        "artifact cache: "
        + ("fresh per run" if fresh else "shared (a mutation retrains the stages whose code it changed)"),
        (
            f"bugs caught: exact {sum(r[2].startswith('caught') for r in bugs)}/{len(bugs)}, statistical "
            f"{sum(r[3].startswith('caught') for r in bugs)}/{len(bugs)}; harmless changes passed: exact "
            f"{sum(r[2] == 'passed' for r in refactors)}/{len(refactors)}, statistical "
            f"{sum(r[3] == 'passed' for r in refactors)}/{len(refactors)}"
        ),
        "",
    ]
    header = ("mutation", "area", "exact", "statistical", "seconds", "what")
    cells = [header, *[(n, a, e, s, f"{t:.0f}", w) for n, a, e, s, w, t in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    table = ["  ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    return "\n".join(head + table + ["", "Why (the first FAIL line of each mode, shortened):", *details]) + "\n"


if __name__ == "__main__":
    main()
