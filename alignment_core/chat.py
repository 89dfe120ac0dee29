"""An attack as the chat the learner sees: one function for generation, snapshots and exports."""

from __future__ import annotations

from typing import Any


def chat_messages(text: str, system_prompt: str | None = None,
                  turns: Any = None) -> list[dict[str, str]]:
    """The system prompt (canaries), then the turns (a multi-turn attack's whole history, ending
    with the user turn `text`), or just `text` as one user turn.

    Turns may come from stored JSON, so only dicts with a role and a content count, and each
    message keeps just those two keys, as strings.
    """
    messages = [{"role": str(t["role"]), "content": str(t["content"])}
                for t in (turns if isinstance(turns, list) else [])
                if isinstance(t, dict) and "role" in t and "content" in t]
    if not messages:
        messages = [{"role": "user", "content": text}]
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def attack_messages(attack: Any) -> list[dict[str, str]]:
    """`chat_messages` of any object with `text` and optional `system_prompt` and `turns`
    (alignment_core's Attack, the app's AttackQuery)."""
    return chat_messages(attack.text, getattr(attack, "system_prompt", None),
                         getattr(attack, "turns", None))
