"""The trainer: the process group, the teacher, the step, checkpoints, metrics, the loop
(docs/architecture.md, docs/train.md).

    torchrun --nproc_per_node=2 -m vsdpo.train --config configs/tiny.toml
"""
