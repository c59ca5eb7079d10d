"""Writes the worked example's dataset: examples/data/customer-replies/{train,eval}.jsonl (deterministic).

A support team's export of chat replies, as teams' exports are: fewer examples than stated, customers'
e-mail addresses and phone numbers left in, a card number pasted by a customer, repeated and nearly repeated
replies, a few broken lines, and some evaluation conversations copied from the training set.
Run: python examples/data/make_customer_replies.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "customer-replies"
SYSTEM = "You are the support assistant of Lumen Lamps. Reply in the house tone: warm, brief, concrete."
QUESTIONS = [
    "My desk lamp stopped working after the last firmware update.",
    "The dimmer on my floor lamp flickers at low brightness.",
    "I was charged twice for the same order.",
    "Can I return a lamp I bought five weeks ago?",
    "The replacement bulb you sent does not fit the socket.",
    "How do I pair the lamp with the phone app?",
    "The package arrived with a cracked glass shade.",
    "Do you ship replacement cables to Canada?",
    "The warm white setting looks blue since yesterday.",
    "My order has been in transit for twelve days.",
    "Is the outdoor lantern safe to leave out in the rain?",
    "The touch control reacts when nobody touches it.",
]
OPENERS = ["Thanks for telling us.", "Sorry about that.", "Good question.", "Happy to help with this.", "Thank you."]
STEPS = [
    "Unplug the lamp for thirty seconds and plug it back in.",
    "Hold the power button for ten seconds until the light pulses twice.",
    "Open the app, choose the lamp and tap Check for updates.",
    "We have issued a refund for the duplicate charge; it shows within five working days.",
    "Our return window is sixty days, so you can send it back free of charge.",
    "We will send a bulb with the E27 base your model takes.",
    "Please send a photo of the shade and we will ship a new one at once.",
    "Replacement cables ship to Canada in about a week.",
    "Switch the colour mode off and on again in the app settings.",
    "The courier confirmed a delay at the depot; a new estimate arrives tomorrow.",
    "The lantern is rated IP65, so rain is fine but do not submerge it.",
    "Lower the touch sensitivity under Settings, Controls, Sensitivity.",
    "If it happens again, reply here and we will arrange an exchange.",
    "Your case number stays the same, so no need to explain it twice.",
]
CLOSERS = ["Have a bright evening!", "We are here if anything else comes up.", "Thanks for your patience."]


def reply(rng: random.Random) -> str:
    steps = rng.sample(STEPS, 3)
    return " ".join([rng.choice(OPENERS), *steps, f"Reference {rng.randrange(10**5, 10**6)}.", rng.choice(CLOSERS)])


def conversation(rng: random.Random, extra: str = "") -> dict:
    question = rng.choice(QUESTIONS) + (f" {extra}" if extra else "") + f" Order {rng.randrange(10**6, 10**7)}."
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": reply(rng)},
        ]
    }


def main() -> None:
    rng = random.Random(11)
    records = [conversation(rng) for _ in range(200)]
    for i in range(12):  # customers leave their e-mail addresses in
        records[5 + 15 * i]["messages"][1]["content"] += f" Write to me at customer{i}@example.com."
    for i in range(5):  # and their phone numbers
        records[9 + 30 * i]["messages"][1]["content"] += f" Call me on +1 415 555 01{20 + i}."
    records[40]["messages"][1]["content"] += " My card is 4111 1111 1111 1111 if you need it."
    records += [json.loads(json.dumps(records[i])) for i in range(0, 40, 5)]  # 8 exact repeats
    for i in range(6):  # 6 near repeats: one word of the reply changed
        near = json.loads(json.dumps(records[100 + i]))
        near["messages"][2]["content"] = near["messages"][2]["content"].replace("Reference", "Ref.")
        records.append(near)
    rng.shuffle(records)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(17, '{"messages": [{"role": "user", "content": "Where is my order?"}, {"role": "assistant"')
    lines.insert(
        60, json.dumps({"messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": ""}]})
    )
    lines.insert(90, json.dumps({"messages": [{"role": "assistant", "content": "Hi, how can I help?"}]}))
    HERE.mkdir(parents=True, exist_ok=True)
    (HERE / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    evaluation = [conversation(rng) for _ in range(36)]
    evaluation += [json.loads(json.dumps(records[i])) for i in (3, 33, 77, 150)]  # 4 copied from training
    (HERE / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in evaluation) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
