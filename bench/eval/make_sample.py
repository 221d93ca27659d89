"""Writes bench/eval/sample/, the small BEIR-format dataset Lore's retrieval is evaluated on in CI.

Deterministic (fixed seed). Three kinds of passages and queries, so that each ranker has
something it is better at:

- a product catalogue and an error-code reference: many near-identical passages that differ only
  in codes and names (`NX-4471B`, `E4021`); queries name the code, where BM25 shines and an
  embedding sees little difference between passages;
- hand-written passages on everyday topics with queries that paraphrase them in other words
  (vacation / paid leave), where embeddings shine and BM25 finds few shared terms;
- distractors on the same topics.

Usage: python bench/eval/make_sample.py [--out bench/eval/sample]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

CATEGORIES = [
    ("router", "a dual-band wireless router", "mesh roaming"),
    ("switch", "an eight-port managed network switch", "VLAN tagging"),
    ("camera", "an outdoor security camera", "night vision"),
    ("thermostat", "a smart thermostat", "schedule learning"),
    ("speaker", "a wireless speaker", "multi-room playback"),
    ("doorbell", "a video doorbell", "package detection"),
]
ADJECTIVES = [
    "Aero",
    "Bolt",
    "Cirrus",
    "Delta",
    "Ember",
    "Fjord",
    "Glint",
    "Halo",
    "Ion",
    "Jade",
    "Krait",
    "Lumen",
]
CAUSES = [
    ("the sync agent cannot reach the server", "check the proxy settings and retry"),
    ("the local disk is full", "free at least 2 GB and restart the agent"),
    ("the access token has expired", "sign out and sign in again"),
    ("a file name contains characters the server rejects", "rename the file"),
    ("the shared folder was moved by its owner", "ask the owner to share it again"),
    ("the clock of the device is wrong", "enable automatic time setting"),
    ("the upload exceeds the plan's file size limit", "split the file or upgrade the plan"),
    ("the antivirus locks the file during upload", "exclude the sync folder from scanning"),
]

# (id, title, text, [paraphrased queries]) — the queries share few words with the passage.
PASSAGES: list[tuple[str, str, str, list[str]]] = [
    (
        "hr-leave",
        "Paid leave",
        "Staff accrue two and a half days of paid leave for every month worked. Unused days carry "
        "over into the next year, up to a maximum of ten.",
        ["How much vacation time do employees earn?"],
    ),
    (
        "hr-parental",
        "Parental leave",
        "New mothers and fathers may take sixteen weeks away from work at full salary after a birth "
        "or an adoption, and another eight weeks unpaid.",
        ["Can I stay home with my newborn baby and still get paid?"],
    ),
    (
        "hr-remote",
        "Working from home",
        "Team members may work remotely up to three days a week, provided their manager agrees and "
        "they attend the Tuesday planning meeting on site.",
        ["Is it allowed to do my job from my house?"],
    ),
    (
        "hr-expenses",
        "Expense claims",
        "Receipts for travel and meals must be submitted within thirty days. Claims are reimbursed "
        "with the next monthly salary payment.",
        ["When do I get my money back for a business trip?"],
    ),
    (
        "hr-sick",
        "Sick days",
        "Anyone who is ill should notify their manager before nine in the morning. A doctor's note "
        "is required from the fourth consecutive day of absence.",
        ["What should I do if I feel unwell and cannot come in?"],
    ),
    (
        "cook-bread",
        "Sourdough basics",
        "A sourdough loaf rises thanks to wild yeast and lactic bacteria kept alive in a starter fed "
        "daily with flour and water.",
        ["What makes homemade loaves puff up without commercial baking powder?"],
    ),
    (
        "cook-rice",
        "Cooking rice",
        "Rinse the grains until the water runs clear, then simmer one part rice with one and a half "
        "parts water, covered, for twelve minutes.",
        ["How do I prepare fluffy grains that are not sticky?"],
    ),
    (
        "cook-eggs",
        "Boiled eggs",
        "Eggs lowered into boiling water for seven minutes have a set white and a jammy yolk; "
        "plunge them into ice water afterwards so they peel easily.",
        ["Timing for a soft centre when I cook an egg in its shell?"],
    ),
    (
        "astro-eclipse",
        "Solar eclipses",
        "A solar eclipse happens when the Moon passes between the Sun and the Earth and casts its "
        "shadow on our planet, darkening the sky for a few minutes.",
        ["Why does the daytime sky go dark when the lunar disc blocks our star?"],
    ),
    (
        "astro-seasons",
        "Why there are seasons",
        "Seasons are caused by the tilt of the Earth's axis, about 23.4 degrees, which changes how "
        "directly sunlight strikes each hemisphere during the year.",
        ["What makes summer warmer than winter?"],
    ),
    (
        "astro-tides",
        "Ocean tides",
        "The gravitational pull of the Moon, and to a lesser degree the Sun, raises bulges in the "
        "oceans; the coast sees two high waters roughly every day.",
        ["Why does the sea level rise and fall along the shore?"],
    ),
    (
        "health-sleep",
        "Sleep needs",
        "Most adults need seven to nine hours of rest per night. Screens in the hour before bed "
        "delay the release of melatonin.",
        ["How long should a grown-up stay in bed, and do phones at night matter?"],
    ),
    (
        "health-hydration",
        "Hydration",
        "Thirst, dark urine and headaches are early signs that the body lacks water; older people "
        "feel thirst later and should drink at regular times.",
        ["How can you tell someone is dehydrated?"],
    ),
    (
        "health-sunscreen",
        "Sun protection",
        "Apply a broad-spectrum cream of factor thirty or more twenty minutes before going "
        "outside, and again every two hours or after swimming.",
        ["How often must I put on lotion against sunburn at the beach?"],
    ),
    (
        "garden-tomato",
        "Growing tomatoes",
        "Tomato plants want six to eight hours of direct light, deep watering twice a week and a "
        "stake or cage once the first flowers appear.",
        ["What care do vine fruit plants need in the vegetable patch?"],
    ),
    (
        "garden-compost",
        "Composting",
        "Mix green kitchen scraps with brown material such as dry leaves or cardboard, keep the "
        "heap moist and turn it every few weeks.",
        ["How do I turn food waste into soil for my plants?"],
    ),
    (
        "garden-frost",
        "Frost protection",
        "Cover tender seedlings with fleece on clear, still nights in spring, when the temperature "
        "near the ground can drop below zero.",
        ["How do I keep young sprouts alive during a cold snap?"],
    ),
    (
        "fin-interest",
        "Compound interest",
        "When returns are reinvested, each year's gain earns its own gains, so savings grow "
        "faster the longer they stay invested.",
        ["Why does money left in an account grow quicker over time?"],
    ),
    (
        "fin-budget",
        "A simple budget",
        "A common rule splits take-home pay into half for needs, thirty percent for wants and "
        "twenty percent for savings or paying off debt.",
        ["How should I divide my monthly income?"],
    ),
    (
        "fin-inflation",
        "Inflation",
        "When the general level of prices rises, each unit of currency buys fewer goods; central "
        "banks raise rates to slow it down.",
        ["Why can my salary purchase less than it did last year?"],
    ),
    (
        "travel-jetlag",
        "Jet lag",
        "After crossing several time zones, get daylight in the morning at the destination and "
        "avoid long naps to reset the body clock faster.",
        ["Tips to recover from tiredness after a long-haul flight east?"],
    ),
    (
        "travel-passport",
        "Passport validity",
        "Many countries refuse entry unless the passport stays valid for at least six months "
        "after the planned date of arrival.",
        ["How long before expiry should my travel document be renewed?"],
    ),
    (
        "pets-dog-walk",
        "Walking a dog",
        "Most dogs need at least an hour of exercise a day; working breeds such as collies need "
        "more, or they become restless and destructive.",
        ["How much activity does a puppy require daily?"],
    ),
    (
        "pets-cat-food",
        "Feeding cats",
        "Cats are obligate carnivores: they need taurine from meat, and a diet without animal "
        "protein makes them ill.",
        ["Can my kitten live on a vegetarian diet?"],
    ),
]
# Same topics, other facts: they compete with the passages above for paraphrased queries.
DISTRACTORS = [
    ("Leave requests", "Requests for days off go through the HR portal at least two weeks ahead."),
    ("Company holidays", "The office closes between Christmas and New Year; these days are not deducted."),
    ("Overtime", "Hours worked beyond forty a week are paid at one and a half times the normal rate."),
    ("Training budget", "Each employee has a yearly budget of 1,500 euros for courses and conferences."),
    ("Desk booking", "Desks in the open space are booked through the office app one day in advance."),
    ("Pasta", "Cook pasta in plenty of salted water and keep a cup of the water to loosen the sauce."),
    ("Knife care", "Dry knives right after washing and hone them weekly to keep the edge straight."),
    ("Baking soda", "Baking soda needs an acid such as buttermilk to release carbon dioxide in a batter."),
    ("Lunar phases", "The Moon's phases follow a 29.5 day cycle from new moon to full moon and back."),
    (
        "Meteor showers",
        "The Perseids peak in mid-August, when Earth crosses the debris of comet Swift-Tuttle.",
    ),
    ("Planets", "Jupiter is the largest planet of the solar system and has at least 95 known moons."),
    ("Exercise", "Adults should get 150 minutes of moderate exercise a week, spread over several days."),
    ("Vitamin D", "Skin makes vitamin D in sunlight; in winter at high latitudes a supplement may help."),
    ("Caffeine", "Caffeine has a half-life of about five hours, so an afternoon coffee can disturb sleep."),
    ("Roses", "Prune roses in late winter just above an outward-facing bud."),
    ("Lawns", "Mow grass no shorter than five centimetres in summer to keep roots shaded."),
    ("Bees", "Flowering herbs such as thyme and lavender feed bees from spring to autumn."),
    ("Credit scores", "Paying bills on time is the largest factor in a credit score."),
    ("Index funds", "An index fund tracks a market index and usually charges lower fees than active funds."),
    ("Mortgages", "A fixed-rate mortgage keeps the same interest rate for the whole agreed period."),
    ("Luggage", "Airlines often limit cabin bags to 55 by 40 by 20 centimetres."),
    (
        "Travel insurance",
        "Travel insurance can cover cancelled flights, lost luggage and medical costs abroad.",
    ),
    ("Vaccinations", "Some destinations require proof of yellow fever vaccination at the border."),
    ("Cat litter", "Scoop litter boxes daily and provide one box per cat plus one."),
    ("Dog training", "Reward-based training with treats works better than punishment for most dogs."),
    ("Aquariums", "A new aquarium should cycle for four to six weeks before fish are added."),
]


def build(seed: int = 7) -> tuple[list[dict[str, str]], list[dict[str, str]], list[tuple[str, str]]]:
    rng = random.Random(seed)
    corpus: list[dict[str, str]] = []
    queries: list[dict[str, str]] = []
    qrels: list[tuple[str, str]] = []

    codes: set[str] = set()
    products = []
    for n in range(96):
        category, kind, feature = CATEGORIES[n % len(CATEGORIES)]
        code = ""
        while not code or code in codes:
            code = f"NX-{rng.randint(1000, 9999)}{rng.choice('ABCDEFGH')}"
        codes.add(code)
        name = f"Northwind {ADJECTIVES[n % len(ADJECTIVES)]} {category.title()} {n // len(ADJECTIVES) + 1}"
        firmware = f"{rng.randint(1, 6)}.{rng.randint(0, 9)}"
        text = (
            f"The {name} (model {code}) is {kind}. Firmware {firmware} added {feature} and fixed "
            f"stability issues. It carries a {rng.choice([1, 2, 3])}-year warranty."
        )
        doc_id = f"product-{n:03d}"
        corpus.append({"_id": doc_id, "title": name, "text": text})
        products.append((doc_id, name, code, category))
    for doc_id, _name, code, _category in rng.sample(products, 16):
        q = rng.choice([f"What is model {code}?", f"firmware of {code}", f"{code} warranty"])
        queries.append({"_id": f"q-{doc_id}", "text": q})
        qrels.append((f"q-{doc_id}", doc_id))
    for doc_id, name, _code, _category in rng.sample(products, 6):
        queries.append({"_id": f"q-name-{doc_id}", "text": f"Tell me about the {name}"})
        qrels.append((f"q-name-{doc_id}", doc_id))

    errors = []
    for n in range(64):
        code = f"E{4000 + n * 7}"
        cause, fix = CAUSES[n % len(CAUSES)]
        text = f"Error {code} appears when {cause}. To resolve it, {fix}. Logged under sync category {n % 5}."
        doc_id = f"error-{code}"
        corpus.append({"_id": doc_id, "title": f"Sync error {code}", "text": text})
        errors.append((doc_id, code))
    for doc_id, code in rng.sample(errors, 12):
        q = rng.choice([f"error {code}", f"What does {code} mean?", f"how to fix {code}"])
        queries.append({"_id": f"q-{doc_id}", "text": q})
        qrels.append((f"q-{doc_id}", doc_id))

    for doc_id, title, text, asked in PASSAGES:
        corpus.append({"_id": doc_id, "title": title, "text": text})
        for n, q in enumerate(asked):
            queries.append({"_id": f"q-{doc_id}-{n}", "text": q})
            qrels.append((f"q-{doc_id}-{n}", doc_id))
    for n, (title, text) in enumerate(DISTRACTORS):
        corpus.append({"_id": f"note-{n:02d}", "title": title, "text": text})
    rng.shuffle(corpus)
    return corpus, queries, qrels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample")
    args = parser.parse_args()
    corpus, queries, qrels = build()
    (args.out / "qrels").mkdir(parents=True, exist_ok=True)
    with (args.out / "corpus.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in corpus)
    with (args.out / "queries.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in queries)
    with (args.out / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        out.writelines(f"{q}\t{d}\t1\n" for q, d in qrels)
    print(f"{len(corpus)} passages, {len(queries)} queries -> {args.out}")


if __name__ == "__main__":
    main()
