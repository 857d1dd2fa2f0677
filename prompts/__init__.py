"""Prompt files for the model-driven agent, loaded by name.

``load_prompt("system")`` reads ``system.md`` beside this module. Prompts are files so they can be
read, reviewed and changed without touching code; ``{placeholders}`` are filled with
``str.format`` by the caller, so literal braces in a prompt are doubled.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent


class PromptError(LookupError):
    """A prompt that does not exist, as one sentence."""


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.md"
    if not name.replace("_", "").isalnum() or not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.md") if p.stem != "README"))
        raise PromptError(f"no prompt named {name!r} in {PROMPTS_DIR}; known prompts: {known}")
    return path.read_text(encoding="utf-8").strip() + "\n"


def tool_guidance() -> dict[str, str]:
    """Per-tool guidance from tools.md: one ``## tool_name`` section per tool."""
    sections: dict[str, str] = {}
    current = None
    for line in load_prompt("tools").splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return {name: text.strip() for name, text in sections.items()}
