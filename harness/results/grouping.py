"""What makes records comparable: the settings that split them into groups, one table each.

Records are split by :func:`comparability_key`: the architecture, the data (fingerprint, display name, image
counts, subset and validation-split settings), the recipe with all its fields, the engine settings and the
selection protocol. Records that differ in any of these are never averaged together: each :class:`Group` is
its own table, with a caption that states its real data size; groups that would share a title are told
apart by the settings that differ (:func:`qualify`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import PurePath

from harness.data.datasets import display_name
from harness.results.records import Record

SUBSET_NOTES = ("train_subset", "test_subset", "val_split", "split_seed")
RECIPE_TEXT_FIELDS = ("notes",)  # descriptions: they do not change training, so they do not split groups


def engine_settings(record: Record) -> dict:
    """The record's ``engine``, all of its fields (records of schema 1 get theirs from
    :func:`~harness.results.records.migrate`, with ``version`` None)."""
    return dict(record["engine"])


def protocol_settings(record: Record) -> dict:
    """How the reported model was chosen (``protocol``: the ``--select`` of the run)."""
    return dict(record["protocol"])


def data_settings(record: Record) -> dict:
    ds = record["dataset"]
    return {
        "name": display_name(ds["name"]),
        "fingerprint": ds.get("fingerprint") or None,
        "num_classes": ds.get("num_classes"),
        "input": ds.get("input"),
        "train": ds.get("train"),
        "test": ds.get("test"),
        "val": ds.get("val") or 0,
        **{k: ds.get(k) for k in SUBSET_NOTES},
    }


def recipe_settings(record: Record) -> dict:
    return {k: v for k, v in record["recipe"].items() if k not in RECIPE_TEXT_FIELDS}


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def comparability_key(record: Record) -> tuple[str, ...]:
    """Records with equal keys may be averaged and compared with each other; all others may not.

    The key holds the architecture, the data (fingerprint, display name, image counts, subset and split
    settings), every recipe field but its description, the engine settings and the selection protocol. The
    method (and its options, teacher and seed) is not part of it: methods of one key are the rows of a table.
    """
    return (
        record["arch"],
        canonical(data_settings(record)),
        canonical(recipe_settings(record)),
        canonical(engine_settings(record)),
        canonical(protocol_settings(record)),
    )


def group_id(key: tuple[str, ...]) -> str:
    return hashlib.blake2b(canonical(list(key)).encode(), digest_size=4).hexdigest()


def budget(record: Record) -> str:
    r = record["recipe"]
    return f"{r['name']} {r['epochs']}ep bs{r['batch_size']}"


def variant(record: Record) -> str:
    opts = record["method"].get("options") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(opts.items()) if v != record["method"].get("defaults", {}).get(k))


_PATH = re.compile(r"(?<![\w.])(?:~|\.{1,2}|[A-Za-z]:)?(?:[/\\][^\s/\\;,()]+)+[/\\]?")


def strip_paths(text: str) -> str:
    """``image folder /work/data/x.tar.gz`` -> ``image folder x.tar.gz``: captions never show paths."""
    return _PATH.sub(lambda m: PurePath(m.group(0).replace("\\", "/").rstrip("/")).name or m.group(0), text)


def on_off(flag: object) -> str:
    return "on" if flag else "off"


@dataclass(frozen=True)
class Group:
    """Records that may be compared: one table."""

    key: tuple[str, ...]
    arch: str
    budget: str
    data: dict
    recipe: dict
    engine: dict
    protocol: dict
    sources: tuple[str, ...]
    devices: tuple[str, ...]  # where latency was measured
    qualifier: str = ""  # what tells this group from others with the same title (set by collect)

    @property
    def id(self) -> str:
        return group_id(self.key)

    @property
    def dataset(self) -> str:
        return self.data["name"]

    @property
    def title(self) -> str:
        base = f"{self.arch} on {self.dataset} ({self.budget})"
        return f"{base} [{self.qualifier}]" if self.qualifier else base

    def counts_text(self) -> str:
        """``300 train / 200 test``: the images the records were trained and tested on."""
        d = self.data
        counts = [f"{d['train']:,} train" if d["train"] is not None else "? train"]
        if d["val"]:
            counts.append(f"{d['val']:,} val")
        counts.append(f"{d['test']:,} test" if d["test"] is not None else "? test")
        return " / ".join(counts)

    def data_text(self) -> str:
        d = self.data
        picked = []
        if d.get("train_subset"):
            picked.append(f"train subset {d['train_subset']:,}")
        if d.get("test_subset"):
            picked.append(f"test subset {d['test_subset']:,}")
        if d.get("val_split"):
            picked.append(f"val split {d['val_split']:g} of train")
        if picked:
            picked.append(f"split seed {d.get('split_seed', 0)}")
        shape = "x".join(map(str, d["input"])) if d.get("input") else "?"
        return (
            self.counts_text()
            + " images"
            + (f" ({', '.join(picked)}, stratified)" if picked else "")
            + f", {d.get('num_classes') or '?'} classes, {shape}"
        )

    def caption(self) -> str:
        r, e = self.recipe, self.engine
        schedule = r.get("schedule", "?") + (f" {r['milestones']}" if r.get("milestones") else "")
        engine = f"{e.get('device') or '?'}, amp {on_off(e.get('amp'))}, channels_last {on_off(e.get('channels_last'))}"
        if e.get("version") is not None:
            engine += f", engine v{e['version']}"
        extra = {k: v for k, v in e.items() if k not in ("version", "device", "amp", "channels_last")}
        engine += "".join(
            f", {k} {v.get('profile', v) if isinstance(v, dict) else v}" for k, v in sorted(extra.items())
        )
        protocol = ", ".join(f"{k}={v}" for k, v in sorted(self.protocol.items()))
        source = "; ".join(strip_paths(s) for s in self.sources) or "unknown"
        text = (
            f"Data: {self.data_text()}; source: {source}; fingerprint {(self.data['fingerprint'] or '?')[:12]}. "
            f"Recipe {r.get('name')}: {r.get('epochs')} epoch(s), batch {r.get('batch_size')}, lr {r.get('lr')}, "
            f"weight decay {r.get('weight_decay')}, {schedule}. Engine: {engine}. Selection: {protocol}."
        )
        if self.devices:
            text += f" Latency measured on {'; '.join(self.devices)}."
        return text + f" Group {self.id}."


COUNT_FIELDS = tuple(("data", k) for k in ("train", "val", "test", "train_subset", "test_subset", "val_split"))


def sections(g: Group) -> dict[tuple[str, str], object]:
    return {
        (section, k): v
        for section, values in (("data", g.data), ("recipe", g.recipe), ("engine", g.engine), ("protocol", g.protocol))
        for k, v in values.items()
    }


def qualify(groups: dict[tuple, Group]) -> dict[tuple, Group]:
    """Groups sharing a title get the settings that tell them apart appended (``train 300, test 200``)."""
    by_title: dict[str, list[tuple]] = {}
    for key, g in groups.items():
        by_title.setdefault(g.title, []).append(key)
    out = dict(groups)
    for keys in by_title.values():
        if len(keys) < 2:
            continue
        flat = {k: sections(groups[k]) for k in keys}
        names = sorted({n for f in flat.values() for n in f})
        differ = [n for n in names if len({canonical(f.get(n)) for f in flat.values()}) > 1]
        counts = any(n in differ for n in COUNT_FIELDS)
        shown = [n for n in differ if n != ("data", "fingerprint") and not (counts and n in COUNT_FIELDS)]
        for k in keys:
            parts = [groups[k].counts_text()] if counts else []
            parts += [f"{n[1]} {flat[k].get(n)}" for n in shown]
            if not parts:  # only the data differ (same sizes, other images)
                parts = [f"data {str(groups[k].data['fingerprint'])[:8]}"]
            out[k] = replace(groups[k], qualifier=", ".join(parts))
    return out
