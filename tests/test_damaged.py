"""Damaged artifacts and checkpoints are never used (issue 22, class 1): every artifact is verified against
the digest stored beside it and every checkpoint against the digest stored in it; a file that cannot be
trusted is one ``bench: warning:`` line naming it, is moved aside (never tried again), and the stage is
trained again (artifact) or starts from scratch (checkpoint)."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_tiny
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.train.engine import fit
from harness.train.objective import StepOutput


def tree_run(tmp_path: Path, cache: Path, out: str, **overrides):
    from test_data import make_tree

    tree = tmp_path / "tree"
    if not tree.exists():
        make_tree(tree)
    return run_tiny(
        cache,
        tmp_path / out,
        dataset=f"imagefolder:{tree}",
        train_subset=None,
        test_subset=None,
        overrides={"epochs": 1, "batch_size": 8},
        **overrides,
    )


def warnings_of(capsys: pytest.CaptureFixture) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: warning: ")]


def flip_weight_bytes(path: Path) -> None:
    """Invert 4 bytes in the middle of the largest tensor stored in a torch file (a zip of raw tensor data)."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = (
        int.from_bytes(raw[info.header_offset + o : info.header_offset + o + 2], "little") for o in (26, 28)
    )
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    raw[start : start + 4] = bytes(b ^ 0xFF for b in raw[start : start + 4])
    path.write_bytes(bytes(raw))


def test_a_damaged_artifact_is_named_set_aside_and_retrained(capsys, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = tree_run(tmp_path, cache, "a").records[0]["stages"]["baseline[resnet8]"]
    artifact = cache / "artifacts" / "baseline" / f"{first['artifact']}.pt"
    meta = artifact.with_suffix(".json")
    capsys.readouterr()

    # four bytes of a weight tensor inverted: the weights no longer have the digest their JSON stores
    flip_weight_bytes(artifact)
    second = tree_run(tmp_path, cache, "b").records[0]["stages"]["baseline[resnet8]"]
    (line,) = warnings_of(capsys)
    assert line.startswith(f"bench: warning: artifact {artifact} of baseline[resnet8] cannot be trusted: ")
    assert line.endswith("moved aside to " + artifact.name + ".damaged, the stage is trained again")
    assert second["origin"] == "trained" and second["reused"] is False  # never served
    assert second["digest"] == json.loads(meta.read_text())["digest"]  # the record and the artifact agree
    assert (artifact.parent / (artifact.name + ".damaged")).exists()

    # a valid torch file of the wrong shapes, with a JSON whose digest matches it: refused, retrained
    from harness.core.identity import weights_digest

    wrong = {"model.fc.weight": torch.zeros(2, 2)}
    torch.save({"objective": wrong, "history": [], "seconds": 0.0}, artifact)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "digest": weights_digest(wrong)}))
    third = tree_run(tmp_path, cache, "c").records[0]["stages"]["baseline[resnet8]"]
    (line,) = warnings_of(capsys)
    assert f"artifact {artifact} of baseline[resnet8] cannot be trusted: its weights do not fit" in line
    assert third["origin"] == "trained"

    # the retrained artifact is sound: the next run reuses it without a word
    fourth = tree_run(tmp_path, cache, "d").records[0]["stages"]["baseline[resnet8]"]
    assert fourth["origin"] == "cache" and fourth["digest"] == third["digest"] and warnings_of(capsys) == []


def test_an_unreadable_artifact_or_one_without_its_json_is_retrained(capsys, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = tree_run(tmp_path, cache, "a").records[0]["stages"]["baseline[resnet8]"]
    artifact = cache / "artifacts" / "baseline" / f"{first['artifact']}.pt"
    artifact.write_bytes(artifact.read_bytes()[:1000])  # truncated
    capsys.readouterr()
    assert tree_run(tmp_path, cache, "b").records[0]["stages"]["baseline[resnet8]"]["origin"] == "trained"
    (line,) = warnings_of(capsys)
    assert f"artifact {artifact} of baseline[resnet8] cannot be trusted: unreadable (" in line


# ---- checkpoints ---------------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(width))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        return StepOutput(losses={"ce": self.w.pow(2).sum()})


class Stream:
    def __len__(self) -> int:
        return 3

    def epoch(self, epoch: int):
        for _ in range(3):
            yield torch.zeros(2, 1), torch.zeros(2, dtype=torch.int64)


RECIPE = Recipe("r", epochs=3, batch_size=2, lr=0.1, weight_decay=0.0)


def train(objective: nn.Module, ckpt: Path, *, resume: bool, epochs: int = 3):
    recipe = RECIPE if epochs == 3 else RECIPE.with_overrides(epochs=epochs)
    return fit(
        objective,
        Stream(),
        recipe,
        evaluate=dict,
        label="m/s",
        reporter=Reporter(),
        device=torch.device("cpu"),
        checkpoint=ckpt,
        resume=resume,
    )


def damage(kind: str, ckpt: Path) -> None:
    if kind == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif kind == "bit-flip":
        flip_weight_bytes(ckpt)
    elif kind == "edited":  # readable, but its content is not what its digest says
        state = torch.load(ckpt, weights_only=False)
        state["objective"]["w"] += 1
        torch.save(state, ckpt)
    elif kind == "no-digest":  # e.g. written by something else
        state = torch.load(ckpt, weights_only=False)
        del state["digest"]
        torch.save(state, ckpt)
    elif kind == "garbage":
        ckpt.write_bytes(b"not a checkpoint")


@pytest.mark.parametrize("kind", ["truncated", "bit-flip", "edited", "no-digest", "garbage"])
def test_a_damaged_checkpoint_restarts_the_stage_from_scratch(capsys, tmp_path: Path, kind: str) -> None:
    ckpt = tmp_path / "s.ckpt"
    reference = train(Tiny(), tmp_path / "ref.ckpt", resume=False)
    train(Tiny(), ckpt, resume=False, epochs=1)  # as if a 3-epoch stage was interrupted after epoch 1
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    capsys.readouterr()
    damage(kind, ckpt)
    fitted = train(Tiny(), ckpt, resume=True)
    (line,) = warnings_of(capsys)
    assert line.startswith(f"bench: warning: checkpoint {ckpt} of m/s cannot be resumed from: ")
    assert line.endswith("moved aside to s.ckpt.damaged, the stage starts from scratch")
    assert fitted.resumed_from_epoch == 0 and len(fitted.history) == 3
    assert [r["train_loss"] for r in fitted.history] == [r["train_loss"] for r in reference.history]
    assert (tmp_path / "s.ckpt.damaged").exists()
    assert torch.load(ckpt, weights_only=False)["epoch"] == 3  # a sound checkpoint replaces it


def test_a_sound_checkpoint_resumes_and_one_of_another_objective_is_refused(capsys, tmp_path: Path) -> None:
    ckpt = tmp_path / "s.ckpt"
    reference = train(Tiny(), tmp_path / "ref.ckpt", resume=False)
    train(Tiny(), ckpt, resume=False, epochs=1)
    state = torch.load(ckpt, weights_only=False)
    resumed = train(Tiny(), ckpt, resume=True)
    assert resumed.resumed_from_epoch == 1 and warnings_of(capsys) == []
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in reference.history]

    torch.save(state, ckpt)
    wider = Tiny(width=3)
    fitted = train(wider, ckpt, resume=True)  # the digest is right, the shapes are not
    (line,) = warnings_of(capsys)
    assert "its weights do not fit: 'w' is (2,) where (3,) is expected" in line
    assert fitted.resumed_from_epoch == 0 and not math.isnan(fitted.history[-1]["train_loss"])
