"""The synthetic task generator: seeded, split-disjoint, every domain, both risk levels."""

import pytest

from vsdpo.tasks import DOMAINS, load_tasks, save_tasks
from vsdpo.tasks.programs import ROBUST_STYLES, parse_prompt, solve, styles
from vsdpo.tasks.synthetic import generate_tasks, is_risky


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
    train_titles = {parse_prompt(p)["title"].split()[0] for p in train}
    held_titles = {parse_prompt(p)["title"].split()[0] for p in held}
    assert not train_titles & held_titles


def test_every_domain_gets_prompts_of_both_risk_levels():
    tasks = generate_tasks(DOMAINS, 90, seed=0, split="eval")
    for domain in DOMAINS:
        mine = [t for t in tasks if t.domain == domain]
        assert len(mine) == 30
        assert all(t.prompt.startswith(f"{domain}: ") for t in mine)
        risky = sum(is_risky(t.prompt) for t in mine)
        assert 5 <= risky <= 25, f"{domain}: {risky}/30 risky"


def test_prompts_parse_back_into_the_fields_the_programs_use():
    chart, web, slide = generate_tasks(DOMAINS, 3, seed=1)
    assert set(parse_prompt(chart.prompt)) == {"chart", "title", "bars"}
    assert set(parse_prompt(web.prompt)) == {"web", "title", "text"}
    assert set(parse_prompt(slide.prompt)) == {"slide", "title", "bullets"}
    for bar in parse_prompt(chart.prompt)["bars"].split("; "):
        label, value = bar.split("=")
        assert f"ax.bar('{label}', {value})" in solve(chart, "plain")


def test_programs_are_short_enough_for_a_tiny_model():
    tasks = generate_tasks(DOMAINS, 300, seed=0) + generate_tasks(DOMAINS, 300, seed=0, split="eval")
    for task in tasks:
        limit = 400 if task.domain == "chart" else 600
        for style in styles(task.domain):
            assert len(solve(task, style)) <= limit, (task.prompt, style)


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


def test_an_unknown_style_raises_naming_the_known_ones():
    task = generate_tasks("slide", 1)[0]
    with pytest.raises(ValueError, match="columns"):
        solve(task, "barh")
