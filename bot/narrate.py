"""Short plain-text descriptions of a diagnosis for a conversation (terminal or Slack mrkdwn).

The full result is structured (tools.diagnosis); these are the few lines a responder reads first.
"""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return f"{round((value or 0.0) * 100)}%"


def top_hypothesis(diagnosis: dict[str, Any] | None) -> dict[str, Any] | None:
    if not diagnosis:
        return None
    live = [h for h in diagnosis.get("hypotheses", []) if h.get("status") != "refuted" and not h.get("guess")]
    return live[0] if live else None


def describe_hypothesis(h: dict[str, Any]) -> str:
    cites = ", ".join(h.get("evidence", [])[:6])
    guess = " (a guess: no evidence)" if h.get("guess") else ""
    return (f"{h['category']} on {h['component']} ({_pct(h.get('confidence'))}, {h.get('status', 'proposed')})"
            f"{guess}: {h.get('statement', '')}" + (f" [evidence {cites}]" if cites else ""))


def describe_mitigation(m: dict[str, Any]) -> str:
    label = f"{m.get('id', '')} " if m.get("id") else ""
    approval = "needs approval" if m.get("requires_approval") else "no approval needed"
    provenance = f"; {m['provenance']}" if m.get("provenance") else ""
    return f"{label}{m['action']} {m.get('target', '')}".rstrip() + f" ({approval}{provenance}). Verify: {m.get('verify', '')}"


def narrative_parts(diagnosis: dict[str, Any]) -> dict[str, Any]:
    """The model's reading, as checked (bot.grounding), in parts: ``reading`` (its summary, marked
    unverified where it cites nothing, and its next steps), ``removed`` (what Sleuth took out of
    its text), ``rejected`` (its claims the evidence did not bear out) and ``suspicious`` (data
    that read like instructions to it). Absent parts are None."""
    narrative = diagnosis.get("narrative") or {}
    reading: list[str] = []
    if narrative.get("summary"):
        mark = " (unverified: it cites no evidence)" if narrative.get("unverified") else ""
        reading.append(f"Model's reading{mark}: " + narrative["summary"])
    for step in (narrative.get("next_steps") or [])[:3]:
        reading.append("Model suggests: " + step)
    flags = narrative.get("flags") or []
    removed = sum(1 for f in flags if f.get("kind") == "action_claim")
    withheld = sum(1 for f in flags if f.get("kind") == "command_withheld")
    removed_line = None
    if removed or withheld:
        parts = ([f"{removed} claim(s) of an approval or an action that no human recorded"]
                 if removed else []) + ([f"{withheld} destructive command(s)"] if withheld else [])
        removed_line = ("Sleuth removed from the model's text: " + " and ".join(parts)
                        + ". Only people approve mitigations (recorded in this thread), and Sleuth runs nothing.")
    rejected = narrative.get("rejected_claims") or []
    rejected_line = f"Model claims not accepted ({len(rejected)}): " + "; ".join(rejected[:2]) if rejected else None
    suspicious = (diagnosis.get("model") or {}).get("suspicious_data") or []
    suspicious_line = None
    if suspicious:
        where = ", ".join(item["where"] for item in suspicious[:4]) + (" ..." if len(suspicious) > 4 else "")
        suspicious_line = f"Data that reads like instructions to the model (treated as data): {where}"
    return {"reading": reading, "removed": removed_line, "rejected": rejected_line, "suspicious": suspicious_line}


def describe_narrative(diagnosis: dict[str, Any]) -> list[str]:
    """The model's reading, as checked, with what was removed from it and the claims the evidence
    did not bear out, as lines of text."""
    parts = narrative_parts(diagnosis)
    return parts["reading"] + [line for line in (parts["removed"], parts["rejected"], parts["suspicious"]) if line]


def describe_diagnosis(diagnosis: dict[str, Any], pending: list[dict[str, Any]] | None = None) -> str:
    incident = diagnosis.get("incident", {})
    lines: list[str] = []
    onset = incident.get("onset")
    service = incident.get("service")
    lines.append(f"{incident.get('title', 'Incident')}" + (f" on {service}" if service else "")
                 + (f", onset {onset}" if onset else ", no clear onset in the window"))
    top = top_hypothesis(diagnosis)
    if top:
        lines.append("Most likely: " + describe_hypothesis(top))
    else:
        lines.append("No hypothesis stands out: the evidence does not point at one cause.")
    others = [h for h in diagnosis.get("hypotheses", []) if h is not top][:2]
    for h in others:
        lines.append("Also: " + describe_hypothesis(h))
    lines += describe_narrative(diagnosis)
    shown = pending if pending is not None else diagnosis.get("mitigations", [])
    for m in shown[:3]:
        lines.append("Proposed: " + describe_mitigation(m))
    failed = [f"{name} ({report.get('reason', '')})" for name, report in diagnosis.get("sources", {}).items()
              if report.get("status") == "error"]
    if failed:
        lines.append("Sources that failed: " + "; ".join(failed))
    model = diagnosis.get("model") or {}
    status = model.get("status", "not_configured")
    if status not in ("not_configured", "ok"):
        lines.append(f"Model: {status}; the deterministic result stands.")
    elif status == "ok" and model.get("note"):
        lines.append(f"Model: ok ({model['note']}).")
    return "\n".join(lines)
