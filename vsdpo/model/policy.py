"""The policy: a transformers model whose forward returns hidden states.

The trainer never calls the language-model head inside the model: the fused loss takes the
final hidden states and the head's weight, so the `[N, V]` logits never exist. `Policy`
wraps a transformers causal LM and makes that explicit — its forward returns hidden states.
Because `Policy` is the FSDP root (`parallelize.py`), its forward all-gathers the root's own
parameters (embeddings, final norm, lm_head) and, as the root, keeps them unsharded until
backward. So right after `policy(...)`, `policy.lm_head_weight` is the full `[V, H]` tensor
that autograd tracks, and its gradient is reduce-scattered back into the shard by FSDP's
post-backward — no extra all-gather for the loss, no DTensor inside the kernel.
"""

import functools

import torch
from torch import nn
from transformers import PreTrainedModel

from vsdpo.model.images import Images
from vsdpo.model.load import checkpoint_names


class Policy(nn.Module):
    def __init__(self, lm: PreTrainedModel):
        super().__init__()
        self.lm = lm
        self.image_token_id = getattr(lm.config, "image_token_id", None)

    @property
    def visual(self) -> nn.Module | None:
        """A vision-language policy's vision tower (a property: no second module path)."""
        return getattr(self.lm.model, "visual", None)

    def forward(self, input_ids_BL: torch.Tensor, attention_mask_BL: torch.Tensor,
                images: Images | None = None) -> torch.Tensor:
        """Final (normed) hidden states `[B, L, H]`; `images` fill the rows' image tokens."""
        if self.visual is None:
            return self.lm.model(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                                 use_cache=False).last_hidden_state
        if images is None:
            return self._without_images(input_ids_BL, attention_mask_BL)
        out = self.lm.model(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                            pixel_values=images.pixels_PD, image_grid_thw=images.grid_I3,
                            mm_token_type_ids=(input_ids_BL == self.image_token_id).int(),
                            use_cache=False)
        return out.last_hidden_state

    def _without_images(self, input_ids_BL, attention_mask_BL) -> torch.Tensor:
        """Rows without images still run the vision tower, on one blank image of a single
        merged token: its FSDP units all-gather (and reduce-scatter) on every rank in the same
        order whatever each rank's rows hold. Its outputs join the graph with weight 0, the
        DeepStack features (Qwen3-VL) too: every tower tensor gets a gradient on every rank,
        or ranks with and without images would reduce-scatter different tensors."""
        merge, patch = self.visual.spatial_merge_size, self.visual.patch_embed
        grid_I3 = torch.tensor([[1, merge, merge]], device=input_ids_BL.device)
        dim = patch.in_channels * patch.temporal_patch_size * patch.patch_size ** 2
        pixels_PD = torch.zeros(merge * merge, dim, device=input_ids_BL.device)
        blank = self.lm.model.get_image_features(pixels_PD, grid_I3)
        deepstack = getattr(blank, "deepstack_features", None) or []
        features = [*blank.pooler_output, *(f for layer in deepstack for f in layer)]
        hidden_BLH = self.lm.model(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                                   use_cache=False).last_hidden_state
        return hidden_BLH + 0 * sum(f.sum() for f in features)

    @functools.cached_property
    def checkpoint_names(self) -> dict[str, str]:
        """State-dict key of `lm` → the name its checkpoint (and vLLM) uses."""
        return checkpoint_names(self.lm)

    @property
    def lm_head_weight(self) -> torch.Tensor:
        return self.lm.get_output_embeddings().weight

    @property
    def block_lists(self) -> list[nn.ModuleList]:
        """The decoder layers, and the vision blocks of a vision-language policy."""
        if self.visual is None:
            return [self.lm.model.layers]
        return [self.lm.model.language_model.layers, self.visual.blocks]
