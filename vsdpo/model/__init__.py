"""The policy model, below both the rollout engines and the trainer: reading a checkpoint
(`pretrained.py`, sharded in `load.py`), the `Policy` and its FSDP2 build (`policy.py`,
`parallelize.py`), what the policy reads besides text (`inputs.py`: the text or the
vision-language kind; `images.py`), and the tiny random models that tests and smoke runs
load like real ones (`tiny.py`, `tiny_vl.py`)."""
