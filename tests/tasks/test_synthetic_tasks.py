"""The synthetic task generator: seeded, split-disjoint, every domain, three blocks each drawn
risky or safe on its own."""

import pytest

from vsdpo.tasks import DOMAINS, load_tasks, save_tasks
from vsdpo.tasks.programs import (NUM_BLOCKS, ROBUST_STYLES, block_spans, parse_prompt, solve,
                                  style_spans, styles)
from vsdpo.tasks.synthetic import generate_tasks, risky_blocks


def test_the_same_seed_gives_the_same_tasks_and_another_seed_other_tasks():
    first = generate_tasks(DOMAINS, 30, seed=3)
    assert first == generate_tasks(DOMAINS, 30, seed=3)
    other = generate_tasks(DOMAINS, 30, seed=4)
    assert sum(a.prompt != b.prompt for a, b in zip(first, other)) >= 25


def test_train_and_eval_prompts_are_disjoint_even_across_many_seeds():
    train = {t.prompt for s in range(5) for t in generate_tasks(DOMAINS, 300, seed=s)}
    held = {t.prompt for s in range(5) for t in generate_tasks(DOMAINS, 300, seed=s, split="eval")}
    assert len(train) > 1400 and len(held) > 1400
    assert not train & held
    train_titles = {parse_prompt(p).title.split()[0] for p in train}
    held_titles = {parse_prompt(p).title.split()[0] for p in held}
    assert not train_titles & held_titles


def test_each_block_is_risky_on_its_own_in_every_domain():
    tasks = generate_tasks(DOMAINS, 300, seed=0, split="eval")
    for domain in DOMAINS:
        mine = [risky_blocks(t.prompt) for t in tasks if t.domain == domain]
        assert len(mine) == 100 and all(len(r) == NUM_BLOCKS for r in mine)
        for k in range(NUM_BLOCKS):
            share = sum(r[k] for r in mine) / len(mine)
            assert 0.35 <= share <= 0.65, (domain, k, share)
        mixed = sum(0 < sum(r) < NUM_BLOCKS for r in mine)
        assert mixed >= 50, f"{domain}: only {mixed}/100 prompts mix risky and safe blocks"


def test_prompts_parse_back_into_the_blocks_the_programs_draw():
    chart, web, slide = generate_tasks(DOMAINS, 3, seed=1)
    for task in (chart, web, slide):
        p = parse_prompt(task.prompt)
        assert p.domain == task.domain and p.title and len(p.blocks) == NUM_BLOCKS
    code = solve(chart, "flat")
    for k, block in enumerate(parse_prompt(chart.prompt).blocks):
        for bar in block.split("; "):
            label, value = bar.split("=")
            assert f"axes[{k}].bar('{label}', {value})" in code


def test_every_block_and_its_style_statement_are_found_in_the_program():
    for task in generate_tasks(DOMAINS, 30, seed=2):
        prone, robust = styles(task.domain)[0], ROBUST_STYLES[task.domain][0]
        code = solve(task, [prone, robust, prone])
        blocks, stated = block_spans(code, task.domain), style_spans(code, task.domain)
        assert len(blocks) == len(stated) == NUM_BLOCKS
        for (start, end), style in zip(blocks, stated):
            assert style is None or start <= style[0] < style[1] <= end
        choice = [code[slice(*s)].replace(f"[{k}]", "[k]") if s else None
                  for k, s in enumerate(stated)]
        assert choice[0] is not None and choice[0] == choice[2] != choice[1]


def test_programs_are_short_enough_for_a_tiny_model():
    tasks = [*generate_tasks(DOMAINS, 300, seed=0),
             *generate_tasks(DOMAINS, 300, seed=0, split="eval")]
    for task in tasks:
        for style in styles(task.domain):
            assert len(solve(task, style)) <= 1000, (task.prompt, style)


def test_tasks_round_trip_through_jsonl_with_a_robust_reference(tmp_path):
    tasks = generate_tasks(DOMAINS, 6, seed=0)
    assert all(t.reference_code == solve(t, ROBUST_STYLES[t.domain][0]) for t in tasks)
    save_tasks(tasks, tmp_path / "tasks.jsonl")
    assert load_tasks(tmp_path / "tasks.jsonl") == tasks


@pytest.mark.parametrize("kwargs, name", [
    (dict(domains=["chart", "video"], n=3), "domains"),
    (dict(domains="web", n=3, split="test"), "split"),
    (dict(domains="web", n=-1), "n"),
])
def test_bad_generator_arguments_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_tasks(**kwargs)


def test_an_unknown_style_or_a_wrong_count_raises_naming_the_known_ones():
    task = generate_tasks("slide", 1)[0]
    with pytest.raises(ValueError, match="small"):
        solve(task, "barh")
    with pytest.raises(ValueError, match="one per block"):
        solve(task, ["small", "large"])
