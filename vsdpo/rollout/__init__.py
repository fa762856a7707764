"""Rollout engines behind one protocol: sample completions, report their log-probs."""

from vsdpo.rollout.base import Completion, Generator, SamplingParams, cut_at
from vsdpo.rollout.build import build_generator
from vsdpo.rollout.hf import HFGenerator

__all__ = ["Completion", "Generator", "HFGenerator", "SamplingParams", "build_generator", "cut_at"]
