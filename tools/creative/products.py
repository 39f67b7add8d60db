"""What copy may say about a product beyond its approved claims: the plain benefits of each
product line (no claims: nothing a reviewer would ask to substantiate, no numbers), and which
product lines are held out of adapter training so that `rmn bench language` measures copy for
products no adapter has seen.

A product is a catalog SKU name, "<Brand> <variant> <line>" (e.g. "Acme Sea Salt Kettle
Chips", sometimes with a pack count); its product line is the catalog noun in it ("Kettle
Chips").

**Held-out rule** (`HELD_OUT_RULE`): of each brand's product lines, in catalog order (the
brand's categories in order, each category's nouns in order), every 4th one starting with the
2nd (index 1, 5, 9, ...) is held out. Adapter training data (`adapters.training.datasets`)
never contains a product of a held-out line, whatever the kind (task/creative and every
brand adapter share the rule), and the rule is recorded in every copy adapter's data card.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tools.catalog import load_catalog
from tools.catalog.product_lines import PRODUCT_CATEGORIES as CATEGORIES

HELD_OUT_EVERY = 4
HELD_OUT_OFFSET = 1
HELD_OUT_RULE = (
    f"every {HELD_OUT_EVERY}th product line (catalog category, noun) of each brand in catalog "
    f"order, starting with line index {HELD_OUT_OFFSET}"
)

# Product line -> what a shopper gets from it, as short phrases copy can use as written: no
# claim-like wording (`tools.policy.claims`), no digits, no brand's banned words; short enough
# for the tightest placement's body. `tests/unit/test_creative.py` checks each against every rule.
BENEFITS: dict[str, tuple[str, ...]] = {
    # snacks
    "Kettle Chips": ("kettle-cooked crunch", "bold, salty flavor", "great for lunch boxes"),
    "Cheddar Crackers": ("real cheddar taste", "crisp, cheesy bites", "easy to pack"),
    "Pretzel Twists": ("golden, crunchy twists", "a salty snack break", "great for dipping"),
    "Trail Mix": ("a mix of nuts and fruit", "handy on the go", "sweet and salty bites"),
    "Granola Bars": ("chewy oat bars", "easy to grab on busy mornings", "a lunch box favorite"),
    "Popcorn": ("light, fluffy popcorn", "ready for movie night", "buttery crunch"),
    "Tortilla Chips": ("sturdy chips for dipping", "made for salsa", "crisp and golden"),
    "Rice Cakes": ("light, crispy cakes", "a simple snack base", "great with toppings"),
    "Sandwich Cookies": ("creamy filling", "crisp chocolate cookies", "made for dunking"),
    "Fruit Snacks": ("chewy fruity bites", "fun shapes", "easy to pack for school"),
    # pantry
    "Pasta Sauce": ("rich tomato flavor", "dinner in minutes", "slow-simmered taste"),
    "Peanut Butter": ("creamy and smooth", "roasted peanut taste", "great on toast"),
    "Oatmeal": ("a warm breakfast", "ready in minutes", "hearty oats"),
    "Breakfast Cereal": ("crunchy in milk", "a quick breakfast", "a morning favorite"),
    "Mac & Cheese": ("creamy, cheesy comfort", "ready in minutes", "a weeknight favorite"),
    "Chicken Broth": ("a savory base", "rich, savory flavor", "great for soups"),
    "Jasmine Rice": ("fluffy, fragrant rice", "cooks up tender", "a side for any meal"),
    "Salsa": ("fresh tomato taste", "a zesty kick", "made for chips"),
    # household
    "Dish Soap": ("cuts through grease", "suds that last", "easy on busy nights"),
    "Laundry Pods": ("just toss one in", "clean, fresh laundry", "no measuring"),
    "Paper Towels": ("strong and absorbent", "quick spill cleanup", "big rolls"),
    "Trash Bags": ("strong, stretchy bags", "easy drawstring ties", "fits most cans"),
    "Surface Cleaner": ("wipes away grime", "easy spray and wipe", "fresh scent"),
    "Scrub Sponges": ("tough on stuck-on food", "a scrub side and a soft side", "rinses clean"),
    "Bath Tissue": ("soft and strong", "rolls that last", "comfort every day"),
    # beauty
    "Lipstick": ("rich, even color", "smooth on the lips", "a shade for every look"),
    "Mascara": ("lifts and defines lashes", "no clumps", "bold lash look"),
    "Liquid Foundation": ("an even, smooth finish", "blends easily", "light feel"),
    "Nail Polish": ("glossy color", "smooth, even coats", "a fresh shade for the week"),
    "Eyeliner": ("precise lines", "glides on smoothly", "easy to control"),
    "Concealer": ("covers dark circles", "blends in easily", "a smooth finish"),
    # skin care
    "Daily Moisturizer": ("soft, smooth skin", "a light daily lotion", "absorbs quickly"),
    "Sunscreen SPF 50": ("made for sunny days outside", "light, non-greasy feel"),
    "Foaming Face Wash": ("a rich, gentle lather", "rinses clean", "a fresh start to the day"),
    "Night Cream": ("a rich night cream", "soft skin by morning", "part of a night routine"),
    "Eye Serum": ("a light eye serum", "smooth under the eyes", "a quick morning step"),
    "Body Lotion": ("soft skin all over", "a light lotion", "absorbs quickly"),
    # otc health
    "Allergy Relief": ("relief for allergy season", "a daily tablet", "small tablets"),
    "Pain Reliever": ("relief for everyday aches", "small, smooth tablets"),
    "Cold & Flu": ("relief from cold symptoms", "for cold and flu season"),
    "Antacid": ("relief for heartburn", "chewable tablets", "fast relief"),
    "Sleep Aid": ("for occasional sleepless nights", "take it at bedtime"),
    "Cough Syrup": ("relief for coughs", "soothing syrup", "for cough and cold season"),
    # vitamins
    "Multivitamin": ("a simple daily habit", "a once-daily tablet", "daily nutrients"),
    "Vitamin D3": ("a daily vitamin", "small softgels", "for sunless days"),
    "Fish Oil": ("a daily omega step", "small, smooth softgels"),
    "Probiotic": ("a daily probiotic", "a capsule a day", "part of a daily routine"),
    "Vitamin C": ("a daily vitamin", "chewable tablets", "tasty daily habit"),
    "Magnesium": ("a daily mineral", "small tablets", "part of an evening routine"),
    # home goods
    "Bath Towel Set": ("soft, thick towels", "quick to dry", "a spa feel at home"),
    "Throw Pillow": ("a soft accent", "adds color to a sofa", "plush and cozy"),
    "Storage Bins": ("keeps clutter in check", "stacks neatly", "sturdy handles"),
    "Shower Curtain": ("a fresh bathroom look", "easy to hang", "easy to clean"),
    "Picture Frame": ("shows off family photos", "easy to hang", "a clean, simple frame"),
    "Scented Candle": ("a warm, cozy glow", "fills a room with scent", "a calm evening"),
    # kitchen
    "Nonstick Skillet": ("eggs slide right off", "even heating", "easy cleanup"),
    "Knife Set": ("sharp, precise cuts", "comfortable handles", "a knife for every task"),
    "Food Storage Set": ("keeps leftovers fresh", "stacks neatly", "snap-tight lids"),
    "Cutting Board": ("a sturdy prep surface", "easy to clean", "roomy for chopping"),
    "Mixing Bowls": ("nest for storage", "roomy for mixing", "sturdy bowls"),
    "Baking Sheet": ("even baking", "cookies slide off", "sturdy, flat pan"),
    # small electronics
    "Air Fryer": ("crispy food with little oil", "quick weeknight dinners", "easy cleanup"),
    "Coffee Maker": ("fresh coffee at home", "simple to brew", "a full pot for the family"),
    "Blender": ("smooth smoothies", "crushes ice", "easy to clean"),
    "Electric Kettle": ("fast boiling", "auto shut-off", "hot water for tea"),
    "Toaster": ("even toasting", "wide slots for bagels", "simple controls"),
    "Hand Mixer": ("several speeds", "light in the hand", "mixes batter fast"),
    # personal care
    "Body Wash": ("a rich lather", "leaves skin feeling fresh", "a fresh scent"),
    "Shampoo": ("clean, soft hair", "a rich lather", "rinses clean"),
    "Deodorant": ("fresh all day", "a clean scent", "glides on smoothly"),
    "Toothpaste": ("fresh breath", "a clean feeling", "minty fresh"),
    "Razor Refills": ("a close, smooth shave", "easy to swap", "sharp blades"),
    "Hand Soap": ("a rich lather", "a fresh scent", "easy pump bottle"),
    # beverages
    "Sparkling Water": ("crisp bubbles", "refreshing fizz", "great over ice"),
    "Cold Brew Coffee": ("smooth, bold coffee", "ready to pour", "great over ice"),
    "Sports Drink": ("for game day", "cool and crisp", "refreshing after practice"),
    "Iced Tea": ("brewed tea taste", "crisp and refreshing", "great over ice"),
    "Energy Drink": ("a crisp, bold taste", "ready when you are", "serve it cold"),
    "Lemonade": ("sweet and tart", "a summer favorite", "refreshing and bright"),
    # alcohol
    "Hard Seltzer": ("crisp and light", "bright fruit flavor", "serve it chilled"),
    "Craft Lager": ("crisp, clean lager", "smooth and easy to drink", "serve it cold"),
    "IPA": ("bold hop flavor", "a bright, bitter finish", "serve it cold"),
    "Canned Cocktail": ("a cocktail in a can", "ready to pour", "serve it over ice"),
    "Red Blend Wine": ("smooth, fruity red", "pairs with dinner", "serve it with friends"),
}

_STOP = frozenset(
    {"a", "an", "and", "the", "of", "for", "with", "in", "on", "to", "it", "its", "your"}
    | {"you", "at", "by", "from", "as", "or", "any", "every", "each", "day", "days", "made"}
    | {"great", "easy", "take", "one", "part", "simple", "more", "fast", "ready", "serve"}
    | {"little"}
)
_WORD = re.compile(r"[a-z][a-z'-]*")


@lru_cache(maxsize=4096)
def product_line(product: str) -> str | None:
    """The catalog noun a product name carries (the longest one found), or None."""
    found = [n for c in CATEGORIES.values() for n in c.nouns if n.lower() in product.lower()]
    return max(found, key=len, default=None)


# The dose forms a product's name can give and the forms its benefits may then name: "A capsule
# a day" on a chewable or gummy probiotic and "Small, smooth tablets" on gel caps were the only
# copy a blind reviewer still rated wrong for the product once the model chose among the
# product's phrases (4 of 200 variants on seed 810, more on seeds 808 and 809).
_NAMED_FORMS: dict[str, frozenset[str]] = {
    "gel caps": frozenset({"capsule"}),
    "gummies": frozenset({"gummy", "chewable"}),
    "softgels": frozenset({"softgel", "capsule"}),
    "chewable": frozenset({"chewable", "tablet"}),
}
_FORM_WORDS = {"tablet": "tablet", "capsule": "capsule", "softgel": "softgel", "gumm": "gummy",
               "chewable": "chewable", "caplet": "tablet"}  # fmt: skip
_FORM = re.compile(rf"\b({'|'.join(_FORM_WORDS)})")


def benefits_for(product: str) -> list[str]:
    """The plain benefits of the product's line, but those naming a dose form the product's
    name rules out ("Gummies" takes no "capsule"); [] for a product outside the catalog."""
    line = product_line(product)
    found = list(BENEFITS.get(line, ())) if line else []
    name = product.lower()
    allowed = next((forms for named, forms in _NAMED_FORMS.items() if named in name), None)
    if allowed is None:
        return found
    return [b for b in found if {_FORM_WORDS[m] for m in _FORM.findall(b.lower())} <= allowed]


def product_lines(brand_id: str) -> list[tuple[str, str]]:
    """(catalog category, noun) of every product line a brand makes, in catalog order: the
    brand's categories (its brand.yaml in the catalog in force) in order, each one's nouns in
    order; a category with no product lines here adds none."""
    categories = load_catalog().brand(brand_id).categories
    return [(c, n) for c in categories if c in CATEGORIES for n in CATEGORIES[c].nouns]


def held_out_lines(brand_id: str) -> set[tuple[str, str]]:
    """The brand's product lines no adapter is trained on (`HELD_OUT_RULE`)."""
    lines = product_lines(brand_id)
    return {line for i, line in enumerate(lines) if i % HELD_OUT_EVERY == HELD_OUT_OFFSET}


def is_held_out(brand_id: str, product: str) -> bool:
    """Whether a product of this brand belongs to a held-out line."""
    line = product_line(product)
    return any(noun == line for _, noun in held_out_lines(brand_id))


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "y", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def keywords(phrase: str, product: str = "") -> set[str]:
    """The content words of a phrase, stemmed, without the product name's own words: what
    copy must use for the phrase to count as said."""
    own = {_stem(w) for w in _WORD.findall(product.lower())}
    words = {_stem(w) for w in _WORD.findall(phrase.lower()) if w not in _STOP and len(w) >= 3}
    return words - own


def names_benefit(text: str, product: str, approved_claims: list[str]) -> bool:
    """Whether `text` names a benefit of the product's line or one of its approved claims:
    at least one content word of a benefit, or an approved claim as written (case-insensitive,
    hyphens as spaces)."""
    flat = " ".join(text.lower().replace("-", " ").split())
    if any(" ".join(c.lower().replace("-", " ").split()) in flat for c in approved_claims):
        return True
    said = {_stem(w) for w in _WORD.findall(text.lower())}
    return any(keywords(b, product) & said for b in benefits_for(product))
