"""Group-relative advantages (GRPO): each sample's reward against its own prompt's group.

    A = (r − mean_group) / (std_group + ε)     (or r − mean_group with scale_by_std=False)

std is the population std (divides by G), so a group of one or a constant group gets zero
advantages rather than NaN. Shapes: B prompts, G samples per prompt.
"""

import torch


def group_advantages(rewards, group_size: int | None = None, scale_by_std: bool = True,
                     eps: float = 1e-6) -> torch.Tensor:
    """Advantages, fp32, in the shape given: `[B, G]`, or flat `[B·G]` with `group_size`.

    Flat rewards are grouped consecutively: samples `i·G … i·G + G − 1` share a prompt.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    if rewards.dim() == 1:
        if group_size is None or group_size < 1 or rewards.numel() % group_size:
            raise ValueError(f"group_size must divide the {rewards.numel()} flat rewards, "
                             f"got {group_size}; or pass rewards shaped [B, G]")
        rewards_BG = rewards.view(-1, group_size)
    elif rewards.dim() == 2:
        if group_size not in (None, rewards.shape[1]):
            raise ValueError(f"group_size={group_size} disagrees with rewards shape "
                             f"{tuple(rewards.shape)}; pass None for [B, G] rewards")
        rewards_BG = rewards
    else:
        raise ValueError(f"rewards must be [B, G] or flat, got shape {tuple(rewards.shape)}")
    adv_BG = rewards_BG - rewards_BG.mean(dim=1, keepdim=True)
    if scale_by_std:
        adv_BG = adv_BG / (rewards_BG.std(dim=1, keepdim=True, correction=0) + eps)
    return adv_BG.reshape(rewards.shape)
