#!/usr/bin/python3
"""Regenerates tests/fixtures/train/ranking_loss.expected.jsonl.

An independent PyTorch port of the authors' ranking distillation loss, written from reading
hly1998/RankingSentenceGeneration (commit 3fa466a), used as the reference for
src/rankemb/train/ranking_loss.cpp. Each function below names the function of theirs it ports:

  posttraining/models.py   Similarity.forward        -> cosine_matrix (student S = cos / temp)
  posttraining/trainers.py CLTrainer training loop   -> cosine_matrix (teacher A = cos / tau2)
  posttraining/models.py   refine_similarity_matrix  -> refine
  posttraining/models.py   transform_tensor          -> transform
  posttraining/models.py   cl_forward                -> target (pred = transform(refine(A)) + A)
  posttraining/models.py   ListMLE.forward           -> list_mle (permutation passed in explicitly)

Two departures, both only visible on exact ties, which the random cases here avoid (checked):
their argsort / sort are unstable; this port uses stable sorts, as the C++ does. `relative` is the
project's second refine mode (METHOD.md "Decisions"), not in the authors' code.

Run with Debian's python3-torch: /usr/bin/python3 scripts/regen/ranking_loss.py
"""

import json
import os
import sys

import numpy as np
import torch

torch.set_num_threads(2)

K = 33  # the paper's chain length: seed + 32 generated sentences
TEMP, TAU2, OMEGA = 0.05, 0.05, 0.5
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "train", "ranking_loss.expected.jsonl")


def cosine_matrix(x, temperature):
    # Both sides build their matrices as CosineSimilarity(dim=-1)(z.unsqueeze(1), z.unsqueeze(0)) / t.
    return torch.nn.CosineSimilarity(dim=-1)(x.unsqueeze(1), x.unsqueeze(0)) / temperature


def refine(A, relative=False):
    k = A.shape[0]
    B = torch.zeros_like(A)
    for i in range(k):
        segment = A[i, i:]
        order = torch.argsort(-segment, stable=True)
        ordered = segment[order]
        for j in range(i, k):
            distance = j - i
            teacher_rank = (order == distance).nonzero(as_tuple=True)[0].item()
            # Their comparison is with the absolute column j; the paper's prose means the distance.
            limit = distance if relative else j
            sign = -1 if teacher_rank < limit else 1
            B[i, j] = sign * abs(A[i, j] - ordered[distance])
    for i in range(k):
        for j in range(i + 1, k):
            B[j, i] = B[i, j]
    return B


def transform(B, w):
    return torch.sign(B) * torch.log(w * torch.abs(B) + 1)


def target(A, relative=False):
    return transform(refine(A, relative), OMEGA) + A


def list_mle(student_scores, teacher_target, perm, eps=1e-7):
    # The authors draw perm = torch.randperm(n) inside forward; here it is an argument.
    pred = student_scores[:, perm]
    true = teacher_target[:, perm]
    true_sorted, idx = true.sort(descending=True, dim=-1, stable=True)
    mask = true_sorted == -1  # allRank's padding marker, kept as they have it
    p = torch.gather(pred, dim=1, index=idx)
    p[mask] = float("-inf")
    top, _ = p.max(dim=1, keepdim=True)
    p = p - top
    suffix = torch.cumsum(p.exp().flip(dims=[1]), dim=1).flip(dims=[1])
    per_entry = torch.log(suffix + eps) - p
    per_entry[mask] = 0.0
    return torch.mean(torch.sum(per_entry, dim=1))


def f32(t):
    """Nested lists of the shortest decimals that round-trip each float32 value."""
    def convert(x):
        return [convert(y) for y in x] if isinstance(x, np.ndarray) and x.ndim else float(repr(np.float32(x)))
    return convert(t.detach().cpu().numpy().astype(np.float32))


def embeddings(kind, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "iid":
        return torch.randn(K, 24, generator=g), torch.randn(K, 16, generator=g)
    # A chain drifting away from its seed: a random walk, so the teacher's order mostly agrees with
    # the chain and refine() has both signs to correct. The student sees a noisy projection of it.
    dt = 48 if kind == "walk-wide" else 24
    steps = torch.randn(K, dt, generator=g) * 0.35
    steps[0] = torch.randn(dt, generator=g) * 2.0
    teacher = torch.cumsum(steps, dim=0)
    student = teacher @ torch.randn(dt, 16, generator=g) / dt ** 0.5 + 0.5 * torch.randn(K, 16, generator=g)
    return teacher, student


def has_ties(A):
    for i in range(A.shape[0]):
        if torch.unique(A[i, i:]).numel() != A.shape[0] - i:
            return True
    return False


def case(name, kind, seed):
    teacher, student = embeddings(kind, seed)
    student = student.clone().requires_grad_(True)
    with torch.no_grad():
        A = cosine_matrix(teacher, TAU2)
    assert not has_ties(A), name
    S = cosine_matrix(student, TEMP)
    B_paper, B_relative = refine(A), refine(A, relative=True)
    Y_paper, Y_relative = transform(B_paper, OMEGA) + A, transform(B_relative, OMEGA) + A
    assert not has_ties(Y_paper) and not has_ties(Y_relative), name
    perm = torch.randperm(K, generator=torch.Generator().manual_seed(1000 + seed))
    loss = list_mle(S, Y_paper, perm)
    loss.backward()
    with torch.no_grad():
        loss_relative = list_mle(S, Y_relative, perm)
    rows_differ = sorted({int(i) for i in torch.nonzero(B_paper != B_relative)[:, 0].tolist()})
    return {
        "case": name, "temp": TEMP, "tau2": TAU2, "omega": OMEGA,
        "teacher": f32(teacher), "student": f32(student),
        "perm_seed": 1000 + seed, "perm": perm.tolist(),
        "A": f32(A), "S": f32(S),
        "B_paper": f32(B_paper), "B_relative": f32(B_relative),
        "Y_paper": f32(Y_paper), "Y_relative": f32(Y_relative),
        "loss_paper": f32(loss), "loss_relative": f32(loss_relative),
        "grad_student_paper": f32(student.grad),
        "rows_where_modes_differ": rows_differ,
    }


def main():
    cases = [case("iid-0", "iid", 0), case("walk-1", "walk", 1), case("walk-2", "walk", 2),
             case("walk-wide-3", "walk-wide", 3)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(f"# generated by scripts/regen/ranking_loss.py (torch=={torch.__version__}, numpy=={np.__version__}; "
                "port of hly1998/RankingSentenceGeneration@3fa466a posttraining/models.py; seeded random chains, k=33)\n")
        for c in cases:
            f.write(json.dumps(c, separators=(",", ":")) + "\n")
    for c in cases:
        print(c["case"], "loss", c["loss_paper"], c["loss_relative"], "rows differ", c["rows_where_modes_differ"],
              file=sys.stderr)


if __name__ == "__main__":
    main()
