"""Rollout engines behind one protocol: sample completions, report their log-probs."""

from vsdpo.rollout.base import Completion, Generator, SamplingParams
from vsdpo.rollout.hf import HFGenerator

__all__ = ["Completion", "Generator", "HFGenerator", "SamplingParams"]
