"""The trainer (DESIGN.md §2): FSDP2 policy, teacher, the step, checkpoints, metrics.

    torchrun --nproc_per_node=2 -m vsdpo.train --config configs/tiny.toml
"""
