"""Writes the main job's dataset: examples/data/support-tone/train.jsonl (deterministic).

The reviewed reply pairs the `support-tone` worked example describes: 1,200 chat examples in the house tone,
drawn from the team's tickets after review. Customers' contact details were cleared with the team's privacy
office (the answers say `personal_data_cleared`), so the few that remain are listed, masked, and do not block.
Unlike `make_customer_replies.py`, this export agrees with its answers: measured and stated sit side by side.
Run: python examples/data/make_support_tone.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "support-tone"
SYSTEM = "You draft replies for the Northwind Outdoor support desk: warm, brief, no jargon."
PRODUCTS = [
    "Ridge 2 tent",
    "Summit 45 backpack",
    "Trailhead stove",
    "Cascade water filter",
    "Harbor rain jacket",
    "Alpine sleeping bag",
    "Canyon headlamp",
    "Meadow camp chair",
    "Glacier trekking poles",
    "Delta dry bag",
    "Pioneer cooler",
    "Beacon lantern",
]
PROBLEMS = [
    "arrived with a torn seam",
    "is missing a part",
    "stopped working after two trips",
    "is the wrong size",
    "was delivered to the wrong address",
    "has not shipped yet",
    "was charged twice",
    "smells of fuel",
    "has a broken zip",
    "does not match the photos",
    "came without instructions",
    "leaks at the base",
    "will not switch on",
    "is heavier than listed",
    "was damaged in transit",
]
ASKS = [
    "What can you do?",
    "Can I get a replacement?",
    "How do I send it back?",
    "Is this covered?",
    "Can you help before the weekend?",
    "Should I keep using it?",
    "Who do I talk to?",
    "What are my options?",
]
OPENERS = [
    "Thanks for writing in.",
    "Sorry to hear that.",
    "Thanks for letting us know.",
    "That is frustrating, sorry.",
    "Good that you asked.",
    "Thanks for the details.",
    "We can sort this out.",
    "Sorry for the trouble.",
]
STEPS = [
    "We have sent a prepaid return label to your inbox.",
    "A replacement leaves our warehouse today.",
    "Your refund is on its way and shows within five working days.",
    "Please send us a photo of the damage.",
    "Keep the original one; there is no need to return it.",
    "Our repair team can fix this free of charge.",
    "We have added express shipping at no cost.",
    "The missing part ships separately in a small parcel.",
    "Please stop using it until the new one arrives.",
    "Your order now shows the corrected address.",
    "We have cancelled the second charge.",
    "The instructions are also on the product page.",
    "Our warranty covers this for two years.",
    "You can swap it for another size in any of our stores.",
    "We have flagged the listing so the photos get fixed.",
    "The courier will collect it from your door.",
    "Pack it loosely; the box does not have to be the original.",
    "Tell us a time that suits you for the pickup.",
    "We have credited your account with a small thank-you.",
    "The new one has the updated seal.",
    "A member of our repair team will call you.",
    "We have checked the batch and yours is the only one.",
    "You will get a tracking link by e-mail.",
    "Nothing else is needed from you.",
]
CLOSERS = [
    "Happy trails!",
    "Thanks for your patience.",
    "We are here if anything else comes up.",
    "Enjoy your next trip.",
    "Speak soon.",
    "Take care out there.",
]
EXAMPLES = 1200
CLEARED_CONTACTS = 3  # contact details the privacy review cleared (documented consent to keep them)


def example(rng: random.Random, index: int) -> dict:
    product, problem = rng.choice(PRODUCTS), rng.choice(PROBLEMS)
    ticket = f"My {product} {problem}. {rng.choice(ASKS)} Ticket {40000 + index}."
    reply = " ".join([rng.choice(OPENERS), *rng.sample(STEPS, 4), rng.choice(CLOSERS)])
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ticket},
            {"role": "assistant", "content": reply},
        ]
    }


def main() -> None:
    rng = random.Random(7)
    records = [example(rng, i) for i in range(EXAMPLES)]
    for i in range(CLEARED_CONTACTS):
        records[100 + 300 * i]["messages"][1]["content"] += f" You can reach me at hiker{i}@example.org."
    HERE.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    (HERE / "train.jsonl").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
