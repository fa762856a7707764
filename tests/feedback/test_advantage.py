"""Group advantages: normalised within each prompt's group of G samples."""

import pytest
import torch

from vsdpo.feedback import group_advantages


def test_each_group_has_mean_zero_and_std_one():
    rewards_BG = torch.tensor([[0.1, 0.5, 0.9, 0.3], [1.0, 0.0, 0.0, 0.2]])
    adv_BG = group_advantages(rewards_BG)
    assert torch.allclose(adv_BG.mean(dim=1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(adv_BG.std(dim=1, correction=0), torch.ones(2), atol=1e-4)


def test_a_constant_group_gets_zero_advantages():
    assert torch.equal(group_advantages([[0.7, 0.7, 0.7]]), torch.zeros(1, 3))


def test_flat_rewards_are_grouped_consecutively_and_keep_their_shape():
    flat = group_advantages([1.0, 0.0, 0.5, 0.5], group_size=2)
    assert flat.shape == (4,)
    assert flat.tolist() == pytest.approx([1.0, -1.0, 0.0, 0.0], abs=1e-5)


def test_without_std_scaling_advantages_are_centred_rewards():
    adv = group_advantages([[0.0, 1.0, 2.0]], scale_by_std=False)
    assert adv.tolist() == [[-1.0, 0.0, 1.0]]


def test_a_group_size_that_does_not_divide_the_rewards_raises():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages([1.0, 2.0, 3.0], group_size=2)
