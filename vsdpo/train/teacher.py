"""The teacher: the policy itself re-reading its tokens with privileged context.

Three choices of weights (`train.teacher`):
- `live`: the student's current weights — no extra memory, the target moves every step.
- `ema`: an exponential moving average, `θ_T ← (1 − rate)·θ_T + rate·θ`, after each step.
- `frozen`: the initial weights, never updated.

EMA and frozen teachers are a second `Policy`, built and sharded exactly like the student, so
the update is a local `lerp_` on matching shards with no communication. The teacher forward
runs under `no_grad`; as an FSDP root it keeps its head weight unsharded after forward,
which is how `hidden` hands the `[V, H]` head to the loss, and `release` reshards it.
"""

import torch
from torch.distributed.checkpoint.state_dict import get_model_state_dict

from vsdpo.config import Config
from vsdpo.model.images import Images
from vsdpo.model.parallelize import build_policy
from vsdpo.model.policy import Policy


class Teacher:
    def __init__(self, kind: str, rate: float, student: Policy, copy: Policy | None):
        self.kind, self.rate = kind, rate
        self.student, self.copy = student, copy

    @torch.no_grad()
    def hidden(self, input_ids_BL, attention_mask_BL, images: Images | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher hidden states `[B, L, H]` and its head weight (None: the student's)."""
        if self.copy is None:
            return self.student(input_ids_BL, attention_mask_BL, images), None
        hidden_BLH = self.copy(input_ids_BL, attention_mask_BL, images)
        return hidden_BLH, self.copy.lm_head_weight.detach()

    def head_weight(self) -> torch.Tensor | None:
        """The head for hidden states read ahead (`rollout.stream`), None: the student's. The
        copy's root stays unsharded for the loss until `release`."""
        if self.copy is None:
            return None
        self.copy.unshard()
        return self.copy.lm_head_weight.detach()

    def release(self) -> None:
        """Reshard the copy's root parameters once the loss no longer needs its head."""
        if self.copy is not None:
            self.copy.reshard()

    @torch.no_grad()
    def update(self) -> None:
        if self.kind != "ema":
            return
        for p_t, p_s in zip(self.copy.parameters(), self.student.parameters(), strict=True):
            p_t.to_local().lerp_(p_s.to_local(), self.rate)

    def state_dict(self) -> dict:
        return {} if self.copy is None else get_model_state_dict(self.copy)


def build_teacher(cfg: Config, student: Policy, device: torch.device) -> Teacher:
    """A live teacher shares the student; EMA and frozen are a second policy, sharded over the
    student's mesh and loaded from the same checkpoint (so they start equal to it, shard for
    shard) — each rank reads only its own shards, never a full copy of the model."""
    copy = None
    if cfg.train.teacher != "live":
        mesh = next(student.parameters()).device_mesh
        copy = build_policy(cfg.model, device, mesh).requires_grad_(False)
    return Teacher(cfg.train.teacher, cfg.train.ema_rate, student, copy)
