"""The embedded synthetic task generator: seeded prompts of three blocks whose defect risk
depends on each block's content.

Every prompt has a title and three blocks (`programs.py`), each drawn *risky* or *safe*
independently with equal odds:

- chart: three bar panels; a risky panel has 3 long category names that collide as flat
  tick labels unless its labels are rotated;
- web: three 240 px cards; a risky card has a long title that overflows (no wrap) or is cut
  (a fixed height) unless it wraps;
- slide: three bullet columns; a risky column has 6-7 bullets that run off the 720 px slide
  at 48 px unless its font shrinks.

Prompts are short and structured (`key: value | key: value`) because the embedded policy is
a tiny model; each task carries the all-robust program (`programs.py`) as its reference.
Train and eval are disjoint by construction: every title contains a topic word, and the
two splits draw topics from disjoint halves of the topic pool.
"""

import random
from collections.abc import Sequence

from vsdpo.tasks.programs import (NUM_BLOCKS, ROBUST_STYLES, Prompt, prompt_text,
                                  parse_prompt, solve, split_list)
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
_CARD_KINDS = ("News", "Team", "Hub", "Desk", "Plan")
_PAGE_KINDS = ("Home", "Portal", "Overview", "Dashboard", "Hub")
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
        topic = rng.choice(topics)
        prompt = prompt_text(_MAKERS[domain](rng, topic, [rng.random() < 0.5
                                                             for _ in range(NUM_BLOCKS)]))
        task = Task(id=f"{split}-{seed}-{i}-{domain}", domain=domain, prompt=prompt)
        reference = solve(task, ROBUST_STYLES[domain][0])
        tasks.append(Task(task.id, domain, prompt, reference_code=reference))
    return tasks


def risky_blocks(prompt: str) -> list[bool]:
    """Per block, whether its prone style shows a defect (by the generator's design)."""
    p = parse_prompt(prompt)
    if p.domain == "chart":
        return [max(len(bar.split("=")[0]) for bar in split_list(b)) > 10 for b in p.blocks]
    if p.domain == "web":
        return [len(b) > 16 for b in p.blocks]
    return [len(split_list(b)) >= 6 for b in p.blocks]


def is_risky(prompt: str) -> bool:
    """Whether some block of this prompt is risky."""
    return any(risky_blocks(prompt))


def _chart(rng: random.Random, topic: str, risky: list[bool]) -> Prompt:
    taken: set[str] = set()  # items are distinct across blocks: each is drawn in one place
    panels = []
    for r in risky:
        draw = (lambda: _long_label(rng)) if r else (lambda: rng.choice(_SHORT_LABELS))
        labels = _distinct(rng, 3 if r else rng.randint(2, 3), draw, taken)
        panels.append("; ".join(f"{label}={rng.randint(1, 99)}" for label in labels))
    return Prompt("chart", f"{topic} {rng.choice(_CHART_KINDS)}", tuple(panels))


def _web(rng: random.Random, topic: str, risky: list[bool]) -> Prompt:
    taken: set[str] = set()
    cards = [_distinct(rng, 1, (lambda: _long_label(rng)) if r else
                       (lambda: f"{rng.choice(_SHORT_LABELS)} {rng.choice(_CARD_KINDS)}"), taken)[0]
             for r in risky]
    return Prompt("web", f"{topic} {rng.choice(_PAGE_KINDS)}", tuple(cards))


def _slide(rng: random.Random, topic: str, risky: list[bool]) -> Prompt:
    taken: set[str] = set()
    columns = []
    for r in risky:
        count = rng.randint(6, 7) if r else rng.randint(2, 4)
        bullets = _distinct(rng, count, lambda: f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}",
                            taken)
        columns.append("; ".join(bullets))
    return Prompt("slide", f"{topic} {rng.choice(_SLIDE_KINDS)}", tuple(columns))


def _long_label(rng: random.Random) -> str:
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_UNITS)}"


def _distinct(rng: random.Random, count: int, draw, taken: set[str]) -> list[str]:
    """`count` draws that are new to `taken` (which they join)."""
    items: list[str] = []
    while len(items) < count:
        item = draw()
        if item not in taken:
            items.append(item)
            taken.add(item)
    return items


_MAKERS = {"chart": _chart, "web": _web, "slide": _slide}
