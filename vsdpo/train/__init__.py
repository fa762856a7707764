"""The trainer: FSDP2 policy, teacher, the step, checkpoints, metrics (docs/architecture.md,
docs/train.md).

    torchrun --nproc_per_node=2 -m vsdpo.train --config configs/tiny.toml
"""
