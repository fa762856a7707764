"""`LossConfig`: the knobs of the fused visual-SDPO loss (docs/kernels.md), checked once here so
the kernels can trust them."""

import math
from dataclasses import dataclass

DIVERGENCES = ("reverse_kl", "forward_kl", "jsd")
KERNELS = ("auto", "triton", "torch")


@dataclass(frozen=True)
class LossConfig:
    """Divergence, coefficients and clipping of `vsdpo_loss` / `linear_vsdpo_loss`.

    divergence: "reverse_kl" KL(p_s‖p_T) | "forward_kl" KL(p_T‖p_s) | "jsd" with weight `jsd_beta`.
    clip_low / clip_high: the PPO ratio is clipped to [1 − clip_low, 1 + clip_high].
    divergence_ratio_clip: when set, the divergence of each token is weighted by the detached
    importance ratio min(π/π_old, divergence_ratio_clip); None weights every token by 1.
    kernel: "auto" (Triton on CUDA tensors, chunked PyTorch otherwise) | "triton" | "torch".
    """

    divergence: str = "reverse_kl"
    jsd_beta: float = 0.5
    kl_coef: float = 1.0
    pg_coef: float = 1.0
    clip_low: float = 0.2
    clip_high: float = 0.2
    temperature: float = 1.0
    divergence_ratio_clip: float | None = None
    kernel: str = "auto"

    def __post_init__(self) -> None:
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"divergence={self.divergence!r}: use one of {DIVERGENCES}")
        if not 0.0 < self.jsd_beta < 1.0:
            raise ValueError(f"jsd_beta={self.jsd_beta}: must lie strictly between 0 and 1")
        for name in ("kl_coef", "pg_coef", "clip_high"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name}={value}: must be a finite number >= 0")
        if not (math.isfinite(self.clip_low) and 0.0 <= self.clip_low < 1.0):
            raise ValueError(f"clip_low={self.clip_low}: must lie in [0, 1) so 1 - clip_low > 0")
        if not (math.isfinite(self.temperature) and self.temperature > 0.0):
            raise ValueError(f"temperature={self.temperature}: must be a finite number > 0")
        if self.divergence_ratio_clip is not None and not (self.divergence_ratio_clip > 0.0):
            raise ValueError(f"divergence_ratio_clip={self.divergence_ratio_clip}: must be > 0, "
                             "or None to switch it off")
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel={self.kernel!r}: use one of {KERNELS}")
