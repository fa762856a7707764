"""Samples: a scored rollout turned into what the step trains on. Each sample holds the
student's prompt ids, the teacher's context ids (the teacher's prompt over the scorer's
context), the sampled tokens with the engine's log-probs, the credit weights and the group
advantage, and whatever images the policy's inputs add to the two prompts."""

from vsdpo.feedback import group_advantages
from vsdpo.model.images import Images
from vsdpo.model.inputs import PolicyInputs
from vsdpo.train.batch import Sample
from vsdpo.train.prompts import student_prompt, teacher_prompt


def make_samples(inputs: PolicyInputs, tasks_N, completions, scored,
                 task_images: dict[str, list], group_size: int, scale_by_std: bool,
                 version: int) -> list[Sample]:
    """One sample per completion. `task_images`: the student's images of each task, by id;
    `version`: the optimizer steps of the weights that sampled the completions."""
    adv_N = group_advantages([s.reward for s in scored], group_size, scale_by_std=scale_by_std)
    tok = inputs.tokenizer
    prompts = {}  # a group shares its prompt and its images
    for task in tasks_N:
        if task.id not in prompts:
            images = task_images[task.id]
            pixels = inputs.pixels(images)
            text = student_prompt(tok, task.prompt, len(images))
            prompts[task.id] = inputs.encode(text, pixels), images, pixels
    samples = []
    for task, c, s, a in zip(tasks_N, completions, scored, adv_N):
        prompt, images, prompt_images = prompts[task.id]
        shot = inputs.screenshot(s.result)
        teacher_images = Images.cat([prompt_images, inputs.pixels(shot)])
        context = inputs.encode(teacher_prompt(tok, s.context, len(images) + len(shot)),
                                teacher_images)
        samples.append(Sample(prompt, context, c.token_ids, c.logprobs, s.credit_weight_T,
                              float(a), prompt_images=prompt_images,
                              teacher_images=teacher_images, policy_version=version))
    return samples
