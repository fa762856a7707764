"""The embedded synthetic task generator: seeded prompts whose defect risk depends on content.

Three families, one per domain, each drawn *risky* or *safe* with equal odds:

- chart: a bar chart; risky tasks have 5 long category names that collide as vertical
  tick labels unless the code rotates them or draws horizontal bars.
- web: a card in a fixed-width box; risky tasks have long titles that overflow the box
  unless the title wraps or its font shrinks.
- slide: a 1280×720 slide of bullets; risky tasks have 10–13 bullets that run off the
  slide unless the font shrinks or the list splits into columns.

Prompts are short and structured (`key: value | key: value`) because the embedded policy is
a tiny model; each task carries the first robust program (`programs.py`) as its reference.
Train and eval are disjoint by construction: every title contains a topic word, and the
two splits draw topics from disjoint halves of the topic pool.
"""

import random
from collections.abc import Sequence

from vsdpo.tasks.programs import ROBUST_STYLES, parse_prompt, solve, split_list
from vsdpo.tasks.task import DOMAINS, Task

SPLITS = ("train", "eval")

_TOPICS = (
    "Sales", "Travel", "Energy", "Housing", "Garden", "Music", "Health", "Cinema",
    "Hiring", "Coffee", "Cycling", "Weather", "Library", "Support", "Mobile", "Fashion",
    "Solar", "Museum", "Payroll", "Transit", "Farming", "Hotel", "Dental", "Gaming",
    "Shipping", "Water", "Bakery", "Robotics", "Tourism", "Fitness", "Printing", "Mining",
)
_SHORT_LABELS = (
    "North", "South", "East", "West", "Alpha", "Beta", "Gamma", "Delta", "Q1", "Q2", "Q3",
    "Q4", "Mon", "Tue", "Wed", "Thu", "Fri", "Red", "Blue", "Green", "Oak", "Pine", "Iron",
    "Gold",
)
_ADJECTIVES = (
    "Northern", "Southern", "Eastern", "Western", "Central", "Coastal", "Regional",
    "Global", "Premium", "Standard",
)
_NOUNS = (
    "Distribution", "Customer", "Research", "Marketing", "Logistics", "Finance",
    "Operations", "Product", "Retail", "Wholesale",
)
_UNITS = ("Center", "Team", "Office", "Division", "Group", "Unit", "Department", "Program")
_CHART_KINDS = ("2023", "2024", "2025", "by Region", "by Team", "Growth")
_CARD_TEXTS = ("Updated weekly", "Read more", "New this month", "See details", "Open now")
_SLIDE_KINDS = ("Roadmap", "Update", "Plan", "Review", "Goals", "Summary")
_VERBS = ("Hire", "Ship", "Cut", "Grow", "Test", "Plan", "Fix", "Launch", "Train", "Audit")
_OBJECTS = (
    "staff", "beta", "costs", "sales", "tools", "budget", "bugs", "stores", "teams",
    "vendors", "pricing", "docs",
)


def generate_tasks(domains: str | Sequence[str], n: int, seed: int = 0,
                   split: str = "train") -> list[Task]:
    """`n` tasks cycling over `domains`; the same arguments always give the same tasks."""
    domains = (domains,) if isinstance(domains, str) else tuple(domains)
    if not domains or any(d not in DOMAINS for d in domains):
        raise ValueError(f"domains must be a non-empty subset of {DOMAINS}, got {domains!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    topics = _TOPICS[SPLITS.index(split)::2]
    tasks = []
    for i in range(n):
        domain = domains[i % len(domains)]
        rng = random.Random(f"{split}:{seed}:{i}")
        prompt = _MAKERS[domain](rng, rng.choice(topics), rng.random() < 0.5)
        task = Task(id=f"{split}-{seed}-{i}-{domain}", domain=domain, prompt=prompt)
        reference = solve(task, ROBUST_STYLES[domain][0])
        tasks.append(Task(task.id, domain, prompt, reference_code=reference))
    return tasks


def is_risky(prompt: str) -> bool:
    """Whether the naive program for this prompt shows a defect (by the generator's design)."""
    fields = parse_prompt(prompt)
    if "chart" in fields:
        return max(len(bar.split("=")[0]) for bar in split_list(fields["bars"])) > 10
    if "web" in fields:
        return len(fields["title"]) > 16
    return len(split_list(fields["bullets"])) >= 10


def _chart(rng: random.Random, topic: str, risky: bool) -> str:
    if risky:
        labels = _distinct(rng, 5, lambda: _long_label(rng))
    else:
        labels = rng.sample(_SHORT_LABELS, rng.randint(3, 6))
    bars = "; ".join(f"{label}={rng.randint(1, 99)}" for label in labels)
    return f"chart: bar | title: {topic} {rng.choice(_CHART_KINDS)} | bars: {bars}"


def _web(rng: random.Random, topic: str, risky: bool) -> str:
    if risky:
        words = [topic, rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_UNITS)]
        title = " ".join(words + ["Report"] * rng.randint(0, 1))
    else:
        title = f"{topic} {rng.choice(('News', 'Team', 'Hub', 'Desk', 'Plan'))}"
    return f"web: card | title: {title} | text: {rng.choice(_CARD_TEXTS)}"


def _slide(rng: random.Random, topic: str, risky: bool) -> str:
    count = rng.randint(10, 13) if risky else rng.randint(3, 7)
    bullets = _distinct(rng, count, lambda: f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}")
    title = f"{topic} {rng.choice(_SLIDE_KINDS)}"
    return f"slide: bullets | title: {title} | bullets: {'; '.join(bullets)}"


def _long_label(rng: random.Random) -> str:
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_UNITS)}"


def _distinct(rng: random.Random, count: int, draw) -> list[str]:
    items: list[str] = []
    while len(items) < count:
        item = draw()
        if item not in items:
            items.append(item)
    return items


_MAKERS = {"chart": _chart, "web": _web, "slide": _slide}
