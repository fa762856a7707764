"""Visual-grounded credit: per-token weights on the self-distillation divergence.

A defect blames source spans; each span is widened to its statement (`statements.py`).
A blamed statement s scores

    r(s) = max over defects d blaming s of IoU(region(s), bbox(d)) · severity(d)

where region(s) is the bounding box of the render boxes of the elements whose source span
starts inside s and that touch the defect's box (the bounding box of their union, not the
union itself). Restricting to the touching elements keeps a statement that drew much (one
`ax.bar` draws every bar and tick label) from diluting its blame for the two labels that
collide; when none of its elements touch the defect, all of them count. A statement that
drew nothing (a CSS declaration, `plt.xticks(rotation=...)`) has no region; it gets
r = severity(d), i.e. IoU is taken as 1: the detector blamed it and there is no geometry
to discount the blame with. The tokens of s get `w_t = 1 + (α − 1)·r(s)`, every other
token 1; a token overlapping several statements takes the largest weight. The weights are then
divided by their mean over the sequence's T tokens: the loss divides by the token count, so
unnormalised weights would let α raise the divergence's share of the loss against the policy
gradient as well; normalised, α moves where the teacher's pull lands, not how strong it is.
An unblamed token thus weighs 1/mean ≤ 1, and a token is blamed exactly when its weight
exceeds its sequence's smallest (when some token is unblamed). α = 1 gives exact ones.

The control `random_statement_scores` (`feedback.credit = "random"`) keeps the number of
weighted statements and their r values but draws the statements uniformly from all of the
code's statements (`statements.all_statements`), reproducibly per code and seed.

Token offsets are the tokenizer's `(start, end)` character offsets **into `code`** (the
string the spans index): if the completion wraps the code (a Markdown fence), shift them
first. Shapes: T tokens, S blamed statements.
"""

import itertools
import zlib

import numpy as np
import torch

from vsdpo.feedback.geometry import iou
from vsdpo.feedback.statements import (all_statements, blamed_statements, check_domain,
                                       python_statements)
from vsdpo.render.types import BBox, Defect, Element, Span


class _Regions:
    """Render boxes indexed by where their source span starts, for fast region lookups."""

    def __init__(self, elements: list[Element]):
        drawn = [e for e in elements if e.span is not None]
        self.starts_E = np.array([e.span[0] for e in drawn], dtype=np.int64)
        self.boxes_E4 = np.array([e.bbox for e in drawn], dtype=np.float64).reshape(-1, 4)

    def __call__(self, span: Span, defect_box: BBox) -> BBox | None:
        """Bounding box of the elements whose source span starts inside `span` and that touch
        `defect_box` (all of the span's elements when none touch it), or None."""
        inside_E = (self.starts_E >= span[0]) & (self.starts_E < span[1])
        if not inside_E.any():
            return None
        boxes = self.boxes_E4[inside_E]
        x0, y0, x1, y1 = defect_box
        touch_E = (boxes[:, 0] < x1) & (x0 < boxes[:, 2]) & (boxes[:, 1] < y1) & (y0 < boxes[:, 3])
        if touch_E.any():
            boxes = boxes[touch_E]
        return (*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist())


def statement_scores(code: str, defects: list[Defect], elements: list[Element] | None = None,
                     domain: str = "chart") -> dict[Span, float]:
    """r(s) for every blamed statement s (unblamed statements have r = 0 and are absent)."""
    check_domain(domain)
    statements = python_statements(code) if domain == "chart" and defects else None
    regions = _Regions(elements or []) if defects else None
    scores: dict[Span, float] = {}
    for d in defects:
        for s in blamed_statements(code, d.spans, domain, statements):
            region = regions(s, d.bbox)
            r = d.severity * (1.0 if region is None else iou(region, d.bbox))
            scores[s] = max(scores.get(s, 0.0), r)
    return scores


def _offsets_T2(token_offsets) -> torch.Tensor:
    """`[T, 2]` int64. A list of pairs (what tokenizers return) is flattened in one pass
    rather than converted pair by pair."""
    if isinstance(token_offsets, list):
        flat = np.fromiter(itertools.chain.from_iterable(token_offsets), np.int64,
                           2 * len(token_offsets))
        offsets_T2 = torch.from_numpy(flat).view(-1, 2)
    else:
        offsets_T2 = torch.as_tensor(np.asarray(token_offsets, dtype=np.int64)).reshape(-1, 2)
    if (offsets_T2[:, 1] < offsets_T2[:, 0]).any():
        raise ValueError("token_offsets: every (start, end) needs end >= start")
    return offsets_T2


def random_statement_scores(code: str, scores: dict[Span, float], domain: str,
                            seed: int) -> dict[Span, float]:
    """`scores`' r values on as many statements drawn uniformly, without replacement, from all
    of the code's statements; the same code and seed draw the same statements."""
    statements = all_statements(code, domain)
    rng = np.random.default_rng([seed, zlib.crc32(code.encode())])
    num_drawn = min(len(scores), len(statements))
    picks = rng.choice(len(statements), size=num_drawn, replace=False)
    values = rng.permutation(np.array(list(scores.values())))[:num_drawn]
    return {statements[i]: float(r) for i, r in zip(picks, values)}


def token_weights(token_offsets, scores: dict[Span, float], alpha: float) -> torch.Tensor:
    """fp32 `[T]`: `1 + (α − 1)·r(s)` on the tokens of each scored statement s, 1 elsewhere,
    divided by the mean over the T tokens; `token_offsets` is `[T, 2]` (list or array).
    Tokens with an empty span (special tokens) are never weighted up."""
    if alpha < 1.0:
        raise ValueError(f"alpha must be >= 1 (1 switches credit off), got {alpha}")
    offsets_T2 = _offsets_T2(token_offsets)
    weights_T = torch.ones(offsets_T2.shape[0], dtype=torch.float32)
    if alpha == 1.0 or not scores:
        return weights_T
    spans_S2 = torch.tensor(list(scores), dtype=torch.int64)
    w_S = 1.0 + (alpha - 1.0) * torch.tensor(list(scores.values()), dtype=torch.float32)
    start_T1, end_T1 = offsets_T2[:, :1], offsets_T2[:, 1:]
    hit_TS = (start_T1 < spans_S2[:, 1]) & (spans_S2[:, 0] < end_T1) & (start_T1 < end_T1)
    w_TS = torch.where(hit_TS, w_S, torch.ones_like(w_S))
    weights_T = torch.maximum(weights_T, w_TS.amax(dim=1))
    return weights_T / weights_T.mean()


def credit_weight(code: str, token_offsets, defects: list[Defect], alpha: float,
                   elements: list[Element] | None = None, domain: str = "chart") -> torch.Tensor:
    """Per-token credit weights, fp32 `[T]`, mean 1 over the T tokens (`token_weights` of the
    blamed statements' `statement_scores`)."""
    check_domain(domain)
    scores = statement_scores(code, defects, elements, domain) if alpha != 1.0 else {}
    return token_weights(token_offsets, scores, alpha)


def weight_table(code: str, defects: list[Defect], alpha: float,
                 elements: list[Element] | None = None,
                 domain: str = "chart") -> list[tuple[str, float, float]]:
    """`(statement text, r, 1 + (α − 1)·r)` per blamed statement, highest r first, for logs:
    the weight before the per-sequence normalisation (which needs the tokens)."""
    scores = statement_scores(code, defects, elements, domain)
    rows = [(code[s:e], r, 1.0 + (alpha - 1.0) * r) for (s, e), r in scores.items()]
    return sorted(rows, key=lambda row: -row[1])
