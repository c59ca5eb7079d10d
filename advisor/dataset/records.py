"""One record -> one training example, validated: its format, its text fields and its target.

Formats (the first that a record's keys match):
- chat: `messages`, a list of `{role, content}` (OpenAI chat fine-tuning format: roles system, developer,
  user, assistant, tool, function; `tool_calls` on assistant turns; content as text or a list of
  `{type: text, text}` parts). System and developer turns come first, then a user turn; a tool turn follows
  an assistant turn that called a tool (or another tool turn); every assistant turn has text or a tool call.
  A conversational `prompt`/`completion` pair (both message lists, as TRL reads them) is read as chat.
- prompt_completion: `prompt` and `completion` strings, the completion not blank.
- text: a `text` string, not blank.
Anything else is invalid, with a message naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
LEADING = ("system", "developer")


@dataclass(frozen=True)
class Example:
    kind: str  # chat, prompt_completion or text
    texts: list[tuple[str, str]]  # (field, text): every text field, scanned and counted
    target: str  # what the model learns to produce: the last assistant turn, the completion, the text
    turns: int
    empty_field: bool  # a text field (other than the target) is empty or whitespace only


class Invalid(ValueError):
    """The record is not a valid example; the message names the field."""


def to_example(record: Any) -> Example:
    """The example in `record`; raises Invalid saying what is wrong."""
    if not isinstance(record, dict):
        raise Invalid(f"a record must be an object, not {_kind(record)}")
    if "messages" in record:
        return _chat(record["messages"], "messages")
    if "prompt" in record or "completion" in record:
        prompt, completion = record.get("prompt"), record.get("completion")
        if isinstance(prompt, list) and isinstance(completion, list):
            return _chat([*prompt, *completion], "prompt+completion")
        for name, value in (("prompt", prompt), ("completion", completion)):
            if not isinstance(value, str):
                raise Invalid(f"{name}: must be a string, not {_kind(value)}")
        if not completion.strip():
            raise Invalid("completion: empty")
        return Example(
            kind="prompt_completion",
            texts=[("prompt", prompt), ("completion", completion)],
            target=completion,
            turns=0,
            empty_field=not prompt.strip(),
        )
    if "text" in record:
        text = record["text"]
        if not isinstance(text, str):
            raise Invalid(f"text: must be a string, not {_kind(text)}")
        if not text.strip():
            raise Invalid("text: empty")
        return Example(kind="text", texts=[("text", text)], target=text, turns=0, empty_field=False)
    keys = ", ".join(_short(key) for key in sorted(map(str, record))[:8]) or "none"
    raise Invalid(f"no messages, prompt/completion or text field (keys: {keys})")


def _chat(messages: Any, where: str) -> Example:
    if not isinstance(messages, list):
        raise Invalid(f"{where}: must be a list of messages, not {_kind(messages)}")
    if not messages:
        raise Invalid(f"{where}: empty")
    texts: list[tuple[str, str]] = []
    target = None
    empty = False
    previous = None  # the previous message's role, or "assistant+tools" after a tool call
    seen_turn = False
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(message, dict):
            raise Invalid(f"{at}: must be an object, not {_kind(message)}")
        role = message.get("role")
        if role not in ROLES:
            raise Invalid(f"{at}.role: {_short(role)} is not one of {', '.join(ROLES)}")
        if role in LEADING and seen_turn:
            raise Invalid(f"{at}.role: a {role} message after the conversation started")
        if role not in LEADING and not seen_turn and role != "user":
            raise Invalid(f"{at}.role: the first turn after system messages must be user, not {role}")
        if role in ("tool", "function") and previous not in ("assistant+tools", "tool", "function"):
            raise Invalid(f"{at}.role: a {role} message must follow an assistant message that calls a tool")
        seen_turn = seen_turn or role not in LEADING
        text = _content(message.get("content"), f"{at}.content")
        if text is not None:
            texts.append((f"{at}.content", text))
        calls = _tool_calls(message, at, texts) if role == "assistant" else 0
        if role == "assistant":
            if (text is None or not text.strip()) and not calls:
                raise Invalid(f"{at}.content: an assistant message with no text and no tool call")
            if "weight" in message and message["weight"] not in (0, 1):
                raise Invalid(f"{at}.weight: must be 0 or 1, not {_short(message['weight'])}")
            target = text if text and text.strip() else texts[-1][1]
        elif text is None or not text.strip():
            if role in ("user", "system", "developer"):
                empty = True
        previous = "assistant+tools" if role == "assistant" and calls else role
    if target is None:
        raise Invalid(f"{where}: no assistant message (nothing to learn)")
    return Example(kind="chat", texts=texts, target=target, turns=len(messages), empty_field=empty)


def _content(content: Any, at: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text parts, joined
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                raise Invalid(f"{at}[{j}]: must be an object, not {_kind(part)}")
            if part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise Invalid(f"{at}[{j}].text: must be a string, not {_kind(part.get('text'))}")
                parts.append(part["text"])
        return "\n".join(parts)
    raise Invalid(f"{at}: must be a string or a list of parts, not {_kind(content)}")


def _tool_calls(message: dict, at: str, texts: list[tuple[str, str]]) -> int:
    calls = message.get("tool_calls")
    if calls is None and isinstance(message.get("function_call"), dict):  # the legacy single-call form
        calls = [{"function": message["function_call"]}]
    if calls is None:
        return 0
    if not isinstance(calls, list):
        raise Invalid(f"{at}.tool_calls: must be a list, not {_kind(calls)}")
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise Invalid(f"{at}.tool_calls[{j}].function.name: missing or not a string")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            raise Invalid(f"{at}.tool_calls[{j}].function.arguments: must be a JSON string, not {_kind(arguments)}")
        texts.append((f"{at}.tool_calls[{j}].function.arguments", arguments))
    return len(calls)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _short(value: Any) -> str:
    """A value for a message: shown when it is a short identifier or a number, else only its kind, so that a
    record's content (which may hold personal data) never reaches the output through an error message."""
    if isinstance(value, str) and _IDENTIFIER.fullmatch(value):
        return repr(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return f"{_kind(value)}" + (f" of {len(value)} characters" if isinstance(value, str) else "")


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")
