"""Prompt-injection hints: the reasons a text reads like an injection, also when hidden, spaced out or encoded."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

from bot.safety.fencing import CONTROL_TOKENS, INVISIBLE

_W = r"(?:\W+\w+){0,3}?\W+"  # up to three filler words between two parts of a phrase
_IGNORE = r"\b(?:ignore|disregard|forget|override|bypass)\b"


@dataclass(frozen=True)
class _Hint:
    """One kind of injection: the reason reported, trigger words (one must occur), alternatives."""

    reason: str
    triggers: tuple[str, ...]
    alternatives: tuple[str, ...]

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile("|".join(self.alternatives), re.I)


_HINTS = (
    _Hint("ignore previous instructions", ("ignore", "disregard", "forget", "override", "bypass"), (
        _IGNORE + _W + r"(?:instructions?|guidelines|guardrails|directives)\b",
        _IGNORE + r"\s+(?:(?:all|any|the|your|previous|prior|earlier|above|safety|system|my|these)\s+)+"
                  r"(?:rules|polic(?:y|ies)|context|safety|constraints|prompts?|above|messages?)\b",
        r"\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:above|before|else)\b",
    )),
    _Hint("new instructions", ("instruction", "task", "directive", "your "), (
        r"\b(?:new|updated|real|actual|revised|additional)\s+(?:instructions?|task|directives?)\b\s*[:\-—]",
        r"\byour\s+(?:new|real|actual|only)\s+(?:task|instructions?|goal|job)\b",
    )),
    _Hint("you are now", ("you are", "from now on", "act as", "pretend", " mode"), (
        r"\byou\s+are\s+(?:now|no\s+longer)\b",
        r"\bfrom\s+now\s+on\b",
        r"\bact\s+as\s+(?:an?\s+)?(?:\w+\s+)?(?:assistant|ai|bot|admin|agent|model)\b",
        r"\bpretend\s+(?:to\s+be|you\s+are)\b",
        r"\b(?:god|dan|unrestricted|jailbreak|developer)\s+mode\b",
        r"\byou\s+are\s+(?:in\s+)?(?:now\s+)?(?:maintenance|debug|admin)\s+mode\b",
    )),
    _Hint("system prompt", ("prompt", "instructions", "jailbreak"), (
        r"\b(?:reveal|print|show|repeat|output|leak|dump|tell\s+me)\s+(?:me\s+)?(?:your|the)\s+(?:\w+\s+)?"
        r"(?:system\s+)?(?:prompt|instructions)\b",
        r"\byour\s+(?:system\s+prompt|instructions)\b",
        r"\bjailbreak",
    )),
    _Hint("role marker", ("system", "assistant", "developer", "human", "ai"), (
        r"(?:^|[\n\"'\]}>.;])\s*(?:system|assistant|developer|human|ai)\s*:\s*"
        r"(?=[^\n]*\b(?:you|your|ignore|must|do\s+not|don't|approve|execute|reply|respond|forget|i\s+will)\b)",
    )),
    _Hint("role-play tag", ("<", "###"), (
        r"</?(?:system|assistant|developer|instructions?|tool_call|tool_response|function_calls?|invoke)\b[^<>\n]{0,80}>",
        r"###\s*(?:instruction|system|response)s?\s*:",
    )),
    _Hint("chat template token", ("<|", "inst]", "sys>>", "s>", "_of_turn>", "im_"), (CONTROL_TOKENS.pattern,)),
    _Hint("fence marker", ("untrusted", "end of"), (
        r"<<<\s*(?:end\s+)?untrusted", r"\buntrusted\s*:[\w.-]*:", r"\bend\s+untrusted\b",
        r"\bend\s+of\s+(?:data|untrusted|context)\b",
    )),
    _Hint("tool-call JSON", ("tool_", "function_call", "arguments", "parameters", "input"), (
        r"[\"']?\b(?:tool_calls?|function_call|tool_use|tool_name|tool_input)\b[\"']?\s*[:=]",
        r"\{\s*[\"']name[\"']\s*:\s*[\"'][\w.-]+[\"']\s*,\s*[\"'](?:arguments|parameters|input)[\"']\s*:",
    )),
    _Hint("approve", ("approv", "authori", "greenlight", "skip", "without"), (
        r"\b(?:approve|authori[sz]e|greenlight)\b" + _W + r"(?:mitigations?|actions?|rollbacks?|the\s+change|it|this|m\d+)\b",
        r"\b(?:is|are|been|was)\s+(?:pre-?)?(?:approved|authori[sz]ed)\b"
        r"(?=[^\n]{0,60}\b(?:apply|proceed|execute|skip|without)\b)",
        r"\bauto-?approve", r"\bpre-?approved\b", r"\bno\s+(?:human\s+)?approval\b",
        r"\bapproval\s+is\s+not\s+(?:required|needed)\b",
        r"\bskip(?:ping)?\s+(?:the\s+)?(?:human\s+)?(?:approval|confirmation|review)\b",
        r"\bwithout\s+(?:asking|approval|confirmation|a\s+human)\b",
    )),
    _Hint("execute", ("exec", "run", "kubectl", "helm", "terraform", "rm ", "curl", "drop"), (
        r"\b(?:execute|run|exec)\s+(?:this|these|the\s+following)(?:\s+(?:commands?|script|shell|code))?\b"
        r"(?!\s+(?:query|again|check))",
        r"\b(?:execute|run|exec)\b[^\n]{0,20}?(?:kubectl\s+(?:delete|drain|exec)|helm\s+(?:delete|uninstall)"
        r"|terraform\s+destroy|rm\s+-rf|drop\s+(?:table|database))",
        r"\b(?:kubectl|helm|terraform)\s+(?:delete|destroy|drain)\b[^\n]{0,40}(?:--all\b|--force\b|\bnamespace\b|-auto-approve)",
        r"\brm\s+-rf\s+/", r"\bcurl\b[^\n|]{0,120}\|\s*(?:ba|z)?sh\b", r"\bdrop\s+(?:table|database)\b",
        r"\bexecute\s+(?:the\s+)?(?:rollback|mitigation|fix)",
    )),
    _Hint("do not tell the user", ("not", "don't", "never", "nobody", "no one", "without", "keep"), (
        r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention|reveal|show|report|alert|notify|warn)\b(?:\W+\w+){0,4}?\W+"
        r"(?:users?|humans?|operators?|anyone|team|channel|them|engineers?|on-?call)\b",
        r"\btell\s+(?:nobody|no\s+one)\b", r"\bwithout\s+(?:telling|informing|notifying)\b",
        r"\bkeep\s+(?:this|it)\s+(?:secret|hidden|between\s+us)",
    )),
    _Hint("exfiltrate secrets", ("secret", "key", "token", "password", "credential", "env", "/etc/shadow", "id_rsa"), (
        r"\b(?:post|send|print|reveal|output|share|leak|upload|paste|dump|exfiltrate|email|list)\s+(?:me\s+|us\s+)?"
        r"(?:(?:all|the|your|any|every|of)\s+)+(?:\w+\s+){0,2}?(?:secrets?|api\s*keys?|tokens?|passwords?|credentials"
        r"|env(?:ironment)?\s+variables?|\.env|private\s+keys?)\b(?!\s+reset)",
        r"~/\.aws/credentials", r"/etc/shadow", r"\bid_rsa\b", r"\b(?:OPENAI_API_KEY|SLACK_BOT_TOKEN|AWS_SECRET_ACCESS_KEY)\b",
    )),
    _Hint("widen the query", ("widen", "expand", "broaden", "all ", "every"), (
        r"\b(?:widen|expand|broaden)\s+(?:the\s+|your\s+)?(?:query|queries|filters?|time\s*range|window|scope|search)\b",
        r"\bquery\s+(?:all|every)\s+(?:services|namespaces|tenants|clusters)\b",
        r"\bto\s+all\s+(?:namespaces|tenants|clusters)\b",
    )),
    _Hint("addressed to the model", ("if you are", "note to", "attention", "dear", "hey", "ai", "assistant", "llm",
                                     "agent", "sleuth", "chatbot"), (
        r"\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|assistant|agent|bot|model)\b",
        r"\b(?:note\s+to|attention|dear|hey)\s+(?:the\s+)?(?:ai|assistant|llm|model|agent|bot|sleuth|chatbot)\b",
        r"\b(?:ai|assistant|llm|agent|sleuth|chatbot)\s*[,:]\s*(?:please\s+)?"
        r"(?:ignore|you|execute|approve|post|send|tell|the\s+rollback)\b",
    )),
    _Hint("authority claim", ("is from", "message from", "behalf", "instructed"), (
        r"\b(?:this\s+(?:message\s+)?is\s+from|message\s+from|on\s+behalf\s+of)\s+(?:the\s+|your\s+)?(?:\w+\s+)?"
        r"(?:admin|administrator|developers?|owner|security\s+team|sre\s+(?:admin\s+)?team|openai|anthropic)\b",
        r"\bas\s+instructed\s+by\s+(?:the\s+)?(?:system|admin)",
    )),
    # Orders given to the assistant by name inside data ("Sleuth: query ...", "Assistant, mark ..."),
    # and what such orders ask of an incident assistant: a verdict, a claimed action, a wider reach.
    _Hint("addressed to the model", ("ai", "assistant", "llm", "agent", "sleuth", "chatbot", "model", "bot"), (
        r"(?:^|[\n.!?;]\s*)(?:ai|assistant|llm|agent|sleuth|chatbot|model|bot)\s*[,:]\s*(?:please\s+|now\s+|you\s+must\s+)?"
        r"(?:mark|say|tell|write|report|query|read|check|run|declare|lower|raise|announce|answer|confirm|widen|refute"
        r"|approve|ignore|execute|post|send|delete|restart|roll|your\s+next\s+step)\b",
    )),
    _Hint("tampering with the verdict", ("refuted", "supported", "approved", "hypothes", "confidence", "root cause"), (
        r"\bmark\b[^\n]{0,80}?\b(?:as\s+)?(?:refuted|supported|resolved|approved)\b",
        r"\b(?:say|report|declare|announce|state|tell)\b[^\n]{0,80}?\b(?:is|are|as)\s+(?:supported|refuted)\b",
        r"\b(?:lower|raise|drop|downgrade|upgrade)\b[^\n]{0,60}?\b(?:hypothes[ie]s|confidence|root\s+cause)\b",
    )),
    _Hint("claim an action", ("approv", "execut", "done", "carried", "rolled", "restart", "mitigated"), (
        r"\b(?:tell|say|announce|write|confirm|report|state)\b[^\n]{0,60}?\b(?:was|were|has\s+been|have\s+been|is|are)"
        r"\s+(?:pre-?)?(?:approved|executed|carried\s+out|done|rolled\s+back|restarted|mitigated)\b",
        r"\bconfirm\s+(?:that\s+)?it\s+is\s+done\b", r"\bwrite\s+done\b",
    )),
    _Hint("reach outside the incident", ("offset", "@", "days", "weeks", "every", "all ", "any", "__name__", "whatever"), (
        r"\boffset\s+-?\d+(?:ms|[smhdwy])\b", r"@\s*\d{9,}\b", r"__name__",
        r"\b(?:query|read|check|search)\b[^\n]{0,80}?\b(?:last|past)\s+\d+\s+(?:days|weeks|months)\b",
        r"\bquery\s+(?:every|all|everything|any)\b", r"\b(?:every|each)\s+series\b",
        r"\bmatching\s+any\s+value\b", r"\bwhatever\s+its\s+name\b",
    )),
)
_INJECTION_PATTERNS = tuple((hint.reason, hint.triggers, hint.regex) for hint in _HINTS)

_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ո": "n", "ս": "u", "Α": "A", "Β": "B", "Ε": "E", "Ι": "I",
    "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X", "А": "A", "В": "B", "Е": "E",
    "І": "I", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "ο": "o",
    "ι": "i", "ν": "v",
})
_LEET = str.maketrans("013457@$", "oieastas")
_SPACED = re.compile(r"\b(?:\w[ .*_-]){2,}\w\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")


def _decoded_base64(text: str) -> list[str]:
    out = []
    for blob in _BASE64.findall(text)[:20]:
        blob = blob[:4096]
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), altchars=b"-_" if ("-" in blob or "_" in blob) else None)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if decoded and sum(c.isprintable() or c in "\n\t" for c in decoded) >= 0.9 * len(decoded) \
                and sum(c.isalpha() or c == " " for c in decoded) >= 0.7 * len(decoded):
            out.append(decoded)
    return out


def _match_reasons(text: str) -> list[str]:
    lower = " ".join(text.lower().split())  # triggers are written with single spaces
    return [reason for reason, triggers, regex in _INJECTION_PATTERNS
            if any(t in lower for t in triggers) and regex.search(text)]


def looks_like_injection(text: str) -> list[str]:
    """The reasons ``text`` reads like a prompt injection; empty when it reads like ordinary data.

    The text is checked as it is, after folding Unicode look-alikes and removing invisible
    characters, with spaced-out letters joined ("i g n o r e"), and with base64 blobs and Unicode
    tag characters decoded. Hidden characters are a reason on their own. Advisory only.
    """
    if not text:
        return []
    reasons: list[str] = []

    def add(found: list[str], prefix: str = "") -> None:
        for reason in found:
            if prefix + reason not in reasons:
                reasons.append(prefix + reason)

    hidden = INVISIBLE.findall(text)
    tags = "".join(chr(ord(c) - 0xE0000) for c in "".join(_TAGS.findall(text)))
    plain = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)
    plain = INVISIBLE.sub("", plain)
    add(_match_reasons(plain))
    for variant in (_SPACED.sub(lambda m: re.sub(r"[ .*_-]", "", m.group()), plain), plain.translate(_LEET)):
        if variant != plain:
            add(_match_reasons(variant))
    if hidden:
        add(["hidden unicode characters"])
    if tags:
        add(_match_reasons(tags), "hidden text: ")
    for decoded in _decoded_base64(plain):
        add(_match_reasons(decoded), "base64: ")
    return reasons
