"""Prompt files for the model-driven agent, loaded by name and rendered by one function.

``render("system", categories=..., actions=...)`` reads ``system.md`` beside this module and fills
its placeholders. A placeholder is a name in single braces, ``{categories}``; every other brace is
literal text (the JSON a prompt shows the model is written as the model should write it, with
single braces), so nothing needs doubling and nothing is ever sent doubled. Rendering refuses a
placeholder it was not given a value for, and a value given for a placeholder the prompt does not
have, so a prompt and its caller cannot drift apart silently. Values are inserted as they are, in
one pass: a value that itself holds ``{name}`` is not rendered again.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

PROMPTS_DIR = Path(__file__).resolve().parent

# {name}: a placeholder. JSON in a prompt never matches: its braces enclose quotes, spaces or colons.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptError(LookupError):
    """A prompt that does not exist or does not render, as one sentence."""


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    """The prompt file as written (placeholders unfilled). Callers send ``render(name, ...)``."""
    path = PROMPTS_DIR / f"{name}.md"
    if not name.replace("_", "").isalnum() or not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.md") if p.stem != "README"))
        raise PromptError(f"no prompt named {name!r} in {PROMPTS_DIR}; known prompts: {known}")
    return path.read_text(encoding="utf-8").strip() + "\n"


def placeholders(name: str) -> list[str]:
    """The placeholders of a prompt, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(load_prompt(name))))


def render(name: str, **values: Any) -> str:
    """The prompt ``name`` with every placeholder filled: the only way a prompt reaches a model."""
    template = load_prompt(name)
    wanted = placeholders(name)
    missing = [key for key in wanted if key not in values]
    if missing:
        raise PromptError(f"prompt {name!r} needs a value for {', '.join(missing)}")
    extra = sorted(set(values) - set(wanted))
    if extra:
        raise PromptError(f"prompt {name!r} has no placeholder {', '.join(extra)}")
    if "{{" in template or "}}" in template:
        raise PromptError(f"prompt {name!r} holds doubled braces; write literal braces single")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def sections(text: str) -> dict[str, str]:
    """The ``## name`` sections of a Markdown text, by name (what precedes the first is dropped)."""
    found: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return {name: body.strip() for name, body in found.items()}


def tool_guidance() -> dict[str, str]:
    """Guidance for the agent's own tools from tools.md: one ``## tool_name`` section per tool."""
    return sections(load_prompt("tools"))
