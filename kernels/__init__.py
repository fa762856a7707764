"""Fused visual-SDPO loss: credit-weighted self-distillation divergence over the full
vocabulary plus a clipped policy-gradient term (docs/kernels.md).

`vsdpo_loss` works on logits, `linear_vsdpo_loss` on hidden states and the lm_head weight
without materialising [N, V] logits; `kernels.reference` is the readable PyTorch spec.
"""

from kernels.config import LossConfig
from kernels.linear_loss import linear_vsdpo_loss
from kernels.loss import vsdpo_loss

__all__ = ["LossConfig", "vsdpo_loss", "linear_vsdpo_loss"]
