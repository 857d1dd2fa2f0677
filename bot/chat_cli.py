"""``sleuth chat``: the agent's conversation in the terminal, as one thread.

The first message starts the investigation, later ones are follow-ups; proposed mitigations are
put to the user one by one (approve, reject, or later). The conversation is checkpointed in the
configured storage (SQLite by default), so ``sleuth chat --thread ID`` resumes it after a restart,
pending approvals included.
"""

from __future__ import annotations

import getpass
import sys
import uuid
from pathlib import Path
from typing import Optional

import typer

_EXIT_WORDS = {"/quit", "/exit", "quit", "exit", ":q"}


def _ask(prompt: str) -> str | None:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        return None
    return line.rstrip("\n")


def _show(turn) -> None:
    prefix = {"question": "sleuth (question)", "error": "sleuth (error)"}.get(turn.kind, "sleuth")
    sys.stdout.write(f"{prefix}> {turn.text}\n")
    if turn.kind == "diagnosis" and turn.charts:
        sys.stdout.write(f"charts: {', '.join(turn.charts)}\n")
    model = turn.model or {}
    if model.get("status") not in (None, "not_configured"):
        sys.stdout.write(f"[model {model.get('name')}: {model.get('status')}, {model.get('prompt_tokens', 0)} prompt + "
                         f"{model.get('completion_tokens', 0)} completion tokens, ~${model.get('cost_usd', 0.0):.4f}]\n")
    sys.stdout.flush()


def _approvals(agent, thread: str, turn, who: str):
    """Put each pending mitigation to the user; returns the last turn (None at end of input)."""
    from bot.narrate import describe_mitigation

    for pending in list(turn.pending):
        answer = _ask(f"approve {describe_mitigation(pending)}? [y]es / [n]o / [l]ater: ")
        if answer is None:
            return None
        choice = answer.strip().lower()[:1]
        if choice not in ("y", "n"):
            sys.stdout.write(f"left {pending['id']} pending; approve it later with /approve {pending['id']}\n")
            continue
        reason = ""
        if choice == "n":
            reason = _ask("reason (optional): ") or ""
        turn = agent.decide(thread, pending["id"], approved=choice == "y", by=who, reason=reason)
        _show(turn)
    return turn


def chat(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="sleuth.yml"),
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="point every source at a scenario folder"),
    thread: Optional[str] = typer.Option(None, "--thread", help="resume this conversation (its id is printed at the start)"),
    state: Optional[Path] = typer.Option(None, "--state", help="SQLite file for conversations (default: storage.sqlite)"),
    charts: Optional[Path] = typer.Option(None, "--charts", help="write PNG charts here"),
    user: Optional[str] = typer.Option(None, "--user", help="your name on decisions (default: your login)"),
) -> None:
    """Talk to Sleuth in the terminal: describe the symptom, ask follow-ups, approve mitigations."""
    from bot.cli_common import guard

    def work() -> None:
        from bot.agent import Agent, open_checkpointer
        from bot.config import load_config
        from bot.investigate import InvestigationRequest
        from bot.scenario import load_scenario

        cfg = load_config(config)
        defaults = InvestigationRequest(symptom="")
        if scenario is not None:
            loaded = load_scenario(scenario, cfg)
            cfg, defaults = loaded.config, loaded.request
        if state is not None:
            cfg.storage.sqlite = state
        who = user or getpass.getuser()
        thread_id = thread or f"cli:{uuid.uuid4().hex[:12]}"
        with open_checkpointer(cfg.storage) as saver:
            agent = Agent(cfg, checkpointer=saver, charts_dir=charts)
            existing = agent.snapshot(thread_id)
            sys.stdout.write(f"thread {thread_id}" + (" (resumed)" if existing else "") +
                             "; /quit to leave, /approve fix1 or /reject fix1 to decide\n")
            if existing:
                if existing.get("waiting") == "question":
                    last = existing["messages"][-1]["text"] if existing["messages"] else ""
                    sys.stdout.write(f"waiting for your answer to the question{': ' + last if last else ''}\n")
                for pending in existing["pending"]:
                    sys.stdout.write(f"pending: {pending['id']} {pending['action']} {pending['target']}\n")
            first = not existing
            while True:
                line = _ask("you> ")
                if line is None or line.strip().lower() in _EXIT_WORDS:
                    break
                text = line.strip()
                if not text:
                    continue
                words = text.split()
                if words[0] in ("/approve", "/reject") and len(words) >= 2:
                    turn = agent.decide(thread_id, words[1], approved=words[0] == "/approve", by=who,
                                        reason=" ".join(words[2:]))
                    _show(turn)
                    continue
                if first:
                    turn = agent.start(thread_id, text, service=defaults.service, window=defaults.window,
                                       at=defaults.at)
                    first = turn.kind == "error"
                else:
                    turn = agent.reply(thread_id, text)
                _show(turn)
                if turn.kind == "diagnosis" and turn.pending:
                    if _approvals(agent, thread_id, turn, who) is None:
                        break
            sys.stdout.write(f"bye; resume with: sleuth chat --thread {thread_id}\n")

    guard(work)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
