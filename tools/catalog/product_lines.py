"""Product categories and their product lines: the nouns a product name is built from
("Kettle Chips", "Cold Brew Coffee"), with each category's typical shelf-price range, margin
and name variants.

Shared by everything that reads product names (ad copy: `tools.creative.products`; adapter
training data) and by the simulator, which draws its SKU catalogs from them
(`tools.world.catalog`). Planning on a brand's own data reads this module, never the
simulator's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    price_range: tuple[float, float]
    margin: float
    nouns: tuple[str, ...]
    variants: tuple[str, ...]


# Category -> its product lines, in catalog order (the held-out rule of copy adapters
# counts product lines in this order: `tools.creative.products`).
PRODUCT_CATEGORIES: dict[str, Category] = {
    "snacks": Category(
        (2.49, 6.99),
        0.30,
        (
            "Kettle Chips",
            "Cheddar Crackers",
            "Pretzel Twists",
            "Trail Mix",
            "Granola Bars",
            "Popcorn",
            "Tortilla Chips",
            "Rice Cakes",
            "Sandwich Cookies",
            "Fruit Snacks",
        ),
        ("Sea Salt", "Smoky BBQ", "Original", "Honey", "Spicy", "Family Size", "Lightly Salted"),
    ),
    "pantry": Category(
        (1.99, 8.99),
        0.22,
        (
            "Pasta Sauce",
            "Peanut Butter",
            "Oatmeal",
            "Breakfast Cereal",
            "Mac & Cheese",
            "Chicken Broth",
            "Jasmine Rice",
            "Salsa",
        ),
        ("Classic", "Organic", "Low Sodium", "Whole Grain", "Chunky", "Family Size"),
    ),
    "household": Category(
        (3.99, 18.99),
        0.28,
        (
            "Dish Soap",
            "Laundry Pods",
            "Paper Towels",
            "Trash Bags",
            "Surface Cleaner",
            "Scrub Sponges",
            "Bath Tissue",
        ),
        ("Lemon", "Unscented", "Mega Roll", "Value Pack", "Fresh Linen", "Ultra"),
    ),
    "beauty": Category(
        (5.99, 24.99),
        0.45,
        ("Lipstick", "Mascara", "Liquid Foundation", "Nail Polish", "Eyeliner", "Concealer"),
        ("Matte", "Waterproof", "Velvet", "Longwear", "Sheer", "Bold"),
    ),
    "skin_care": Category(
        (8.99, 39.99),
        0.48,
        (
            "Daily Moisturizer",
            "Sunscreen SPF 50",
            "Foaming Face Wash",
            "Night Cream",
            "Eye Serum",
            "Body Lotion",
        ),
        ("Sensitive", "Hydrating", "Oil-Free", "Fragrance-Free", "Brightening", "Repair"),
    ),
    "otc_health": Category(
        (4.99, 19.99),
        0.40,
        ("Allergy Relief", "Pain Reliever", "Cold & Flu", "Antacid", "Sleep Aid", "Cough Syrup"),
        ("Extra Strength", "Children's", "Non-Drowsy", "Rapid Release", "24 Hour", "Gel Caps"),
    ),
    "vitamins": Category(
        (7.99, 29.99),
        0.42,
        ("Multivitamin", "Vitamin D3", "Fish Oil", "Probiotic", "Vitamin C", "Magnesium"),
        ("Gummies", "Softgels", "Women's", "Men's", "Adult 50+", "Chewable"),
    ),
    "home_goods": Category(
        (11.99, 79.99),
        0.35,
        (
            "Bath Towel Set",
            "Throw Pillow",
            "Storage Bins",
            "Shower Curtain",
            "Picture Frame",
            "Scented Candle",
        ),
        ("Linen", "Charcoal", "Farmhouse", "Modern", "Coastal", "Velvet"),
    ),
    "kitchen": Category(
        (14.99, 59.99),
        0.30,
        (
            "Nonstick Skillet",
            "Knife Set",
            "Food Storage Set",
            "Cutting Board",
            "Mixing Bowls",
            "Baking Sheet",
        ),
        ("Pro", "Essentials", "Ceramic", "Stainless", "Bamboo", "10-Piece"),
    ),
    "small_electronics": Category(
        (19.99, 149.99),
        0.12,
        ("Air Fryer", "Coffee Maker", "Blender", "Electric Kettle", "Toaster", "Hand Mixer"),
        ("Compact", "Digital", "XL", "Smart", "Classic", "Pro"),
    ),
    "personal_care": Category(
        (2.99, 11.99),
        0.35,
        ("Body Wash", "Shampoo", "Deodorant", "Toothpaste", "Razor Refills", "Hand Soap"),
        ("Fresh", "Sensitive", "Charcoal", "Coconut", "Sport", "Clinical"),
    ),
    "beverages": Category(
        (1.49, 14.99),
        0.25,
        (
            "Sparkling Water",
            "Cold Brew Coffee",
            "Sports Drink",
            "Iced Tea",
            "Energy Drink",
            "Lemonade",
        ),
        ("Lime", "Zero Sugar", "Berry", "Original", "12-Pack", "Peach"),
    ),
    "alcohol": Category(
        (7.99, 29.99),
        0.18,
        ("Hard Seltzer", "Craft Lager", "IPA", "Canned Cocktail", "Red Blend Wine"),
        ("Variety Pack", "Black Cherry", "Session", "Mango", "Reserve", "12-Pack"),
    ),
}

ALL_CATEGORIES = tuple(PRODUCT_CATEGORIES)
