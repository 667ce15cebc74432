"""Intraclass clustering and entropy-selected representatives.

Per class, k-means (scikit-learn, explicit ``n_init`` and ``random_state``: since scikit-learn 1.4 the
default runs k-means once) for k = 1..k_max; the number of clusters is the elbow of the inertia curve found
by ``kneed``'s Kneedle (convex, decreasing). When no elbow is found (a nearly straight curve) k = 1 is
kept and the record says so. Like any elbow rule it finds the coarsest clear structure: when clusters
themselves form groups, it returns the number of groups (the elbow curves are drawn in fig3_elbow). ``k`` fixes the
number instead. The paper found k = 3 on CIFAR-10.

The representative of a (class, cluster) is its member with the lowest entropy of the baseline's softmax;
``correct_only`` restricts the choice to members the baseline classifies correctly (falling back to all
members where none is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from plugins.methods.encodenet.libraries import CLUSTERING, load

#: imported in the functions below; their versions enter the code identity (harness.core.identity)
IMPORTED_WHEN_USED = CLUSTERING


@dataclass
class ClassClusters:
    label: int
    k: int
    inertias: list[float]  # for k = 1..k_max (empty with a fixed k)
    elbow_found: bool
    assignment: np.ndarray  # cluster of each member (indices into the class's members)
    members: np.ndarray  # dataset indices of the class's images


@dataclass
class Representatives:
    """For every training image, the dataset index of its target image; per group, the chosen one."""

    target_of: np.ndarray  # (N,) dataset index of each image's representative
    groups: list[dict] = field(default_factory=list)  # label, cluster, size, representative, entropy


def elbow(ks: list[int], inertias: list[float]) -> int | None:
    if len(ks) < 3:
        return None
    KneeLocator = load("kneed", "EncodeNet's elbow method").KneeLocator
    knee = KneeLocator(ks, inertias, curve="convex", direction="decreasing").knee
    return int(knee) if knee is not None else None


def cluster_class(
    features: np.ndarray, k_max: int, fixed_k: int, seed: int, n_init: int
) -> tuple[int, list[float], bool, np.ndarray]:
    KMeans = load("sklearn.cluster", "EncodeNet's intraclass clustering").KMeans
    n = len(features)
    if fixed_k:
        k = min(fixed_k, n)
        return k, [], True, KMeans(k, n_init=n_init, random_state=seed).fit_predict(features)
    ks = list(range(1, min(k_max, n) + 1))
    fits = [KMeans(k, n_init=n_init, random_state=seed).fit(features) for k in ks]
    inertias = [float(f.inertia_) for f in fits]
    chosen = elbow(ks, inertias)
    k = chosen or 1
    return k, inertias, chosen is not None, fits[k - 1].labels_


def cluster_per_class(
    features: np.ndarray, labels: np.ndarray, *, k_max: int, fixed_k: int, seed: int, n_init: int = 10
) -> list[ClassClusters]:
    out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        k, inertias, found, assignment = cluster_class(features[members], k_max, fixed_k, seed, n_init)
        out.append(ClassClusters(int(label), k, inertias, found, assignment, members))
    return out


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of softmax probabilities."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def representatives(
    groups: list[ClassClusters], entropies: np.ndarray, correct: np.ndarray, correct_only: bool
) -> Representatives:
    """The lowest-entropy member of every (class, cluster) and each image's target."""
    target_of = np.arange(len(entropies))
    chosen = []
    for cc in groups:
        for cluster in range(cc.k):
            members = cc.members[cc.assignment == cluster]
            if len(members) == 0:
                continue
            pool = members[correct[members]] if correct_only and correct[members].any() else members
            rep = int(pool[np.argmin(entropies[pool])])
            target_of[members] = rep
            chosen.append(
                {
                    "label": cc.label,
                    "cluster": cluster,
                    "size": int(len(members)),
                    "representative": rep,
                    "entropy": float(entropies[rep]),
                    "correct": bool(correct[rep]),
                }
            )
    return Representatives(target_of=target_of, groups=chosen)


def one_per_class(
    labels: np.ndarray, entropies: np.ndarray, correct: np.ndarray, correct_only: bool
) -> Representatives:
    """The ablation without clustering: every image maps to its class's lowest-entropy image."""
    groups = [
        ClassClusters(int(c), 1, [], True, np.zeros((labels == c).sum(), dtype=int), np.flatnonzero(labels == c))
        for c in np.unique(labels)
    ]
    return representatives(groups, entropies, correct, correct_only)
