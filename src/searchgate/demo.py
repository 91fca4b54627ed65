"""A realistic, generated electronics catalog for the demo and the benchmarks.

Coherent enough to demonstrate search: a branded product line (MacBook, Galaxy, Pixel,
Echo, PlayStation, ...) is made only by its brand, and a brand that has its own line in a
category makes nothing else there. The same seed always gives the same catalog.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

# department -> category -> (product kinds, brands, price range)
TAXONOMY: dict[str, dict[str, tuple[list[str], list[str], tuple[int, int]]]] = {
    "Computers & Tablets": {
        "Laptops": (
            [
                "Laptop",
                "Chromebook",
                "MacBook Air",
                "MacBook Pro",
                "2-in-1 Laptop",
                "Gaming Laptop",
            ],
            ["Apple", "Dell", "HP", "Lenovo", "Asus", "Acer", "Microsoft", "Samsung", "Google"],
            (199, 3499),
        ),
        "Tablets": (
            ["Tablet", "iPad", "Fire Tablet", "Galaxy Tab", "Kids Tablet"],
            ["Apple", "Samsung", "Amazon", "Lenovo", "Microsoft"],
            (79, 1299),
        ),
        "Desktops": (
            ["Desktop", "All-in-One", "Mini PC", "Gaming Desktop", "iMac"],
            ["Apple", "Dell", "HP", "Lenovo", "Acer", "MSI"],
            (299, 2999),
        ),
        "Monitors": (
            ["Monitor", "Gaming Monitor", "Curved Monitor", "4K Monitor"],
            ["Samsung", "LG", "Dell", "Asus", "Acer", "HP"],
            (99, 1499),
        ),
    },
    "TV & Home Theater": {
        "TVs": (
            ["Smart TV", "4K UHD TV", "OLED TV", "QLED TV", "LED TV"],
            ["Samsung", "LG", "Sony", "Insignia", "TCL", "Vizio", "Toshiba"],
            (129, 4999),
        ),
        "Streaming Media": (
            ["Streaming Stick", "Chromecast", "Fire TV Stick", "Roku Ultra", "Apple TV 4K"],
            ["Google", "Amazon", "Roku", "Apple", "Insignia"],
            (24, 199),
        ),
        "Home Audio": (
            ["Soundbar", "Home Theater System", "Subwoofer", "Bookshelf Speakers", "Equalizer"],
            ["Sony", "Bose", "Samsung", "Yamaha", "Sonos", "Polk"],
            (49, 1999),
        ),
    },
    "Cell Phones": {
        "Smartphones": (
            ["iPhone 12", "iPhone 13", "Galaxy S21", "Pixel 6", "Unlocked Phone", "Prepaid Phone"],
            ["Apple", "Samsung", "Google", "Motorola", "TracFone", "OnePlus"],
            (49, 1399),
        ),
        "Phone Accessories": (
            [
                "iPhone Case",
                "Phone Case",
                "Screen Protector",
                "Charger",
                "Car Mount",
                "Battery Pack",
            ],
            ["Otterbox", "Belkin", "Anker", "Insignia", "Speck", "mophie"],
            (9, 129),
        ),
    },
    "Audio": {
        "Headphones": (
            [
                "Wireless Headphones",
                "Noise Cancelling Headphones",
                "Earbuds",
                "Over-Ear Headphones",
                "Gaming Headset",
            ],
            ["Sony", "Bose", "Beats", "JBL", "Sennheiser", "Apple", "Skullcandy"],
            (19, 549),
        ),
        "Speakers": (
            ["Bluetooth Speaker", "Smart Speaker", "Portable Speaker", "Echo Dot", "Google Home"],
            ["JBL", "Bose", "Sonos", "Amazon", "Google", "Ultimate Ears"],
            (29, 499),
        ),
    },
    "Appliances": {
        "Cooktops": (
            ["Electric Cooktop", "Gas Cooktop", "Induction Cooktop"],
            ["Samsung", "GE", "Whirlpool", "Frigidaire", "Bosch", "KitchenAid"],
            (299, 2499),
        ),
        "Refrigerators": (
            [
                "French Door Refrigerator",
                "Side-by-Side Refrigerator",
                "Mini Fridge",
                "Top-Freezer Refrigerator",
            ],
            ["Samsung", "LG", "GE", "Whirlpool", "Frigidaire", "Insignia"],
            (149, 3999),
        ),
        "Microwaves": (
            ["Countertop Microwave", "Over-the-Range Microwave", "Microwave"],
            ["Samsung", "GE", "Panasonic", "Insignia", "Whirlpool"],
            (59, 799),
        ),
        "Washers & Dryers": (
            ["Front Load Washer", "Top Load Washer", "Electric Dryer", "Gas Dryer"],
            ["Samsung", "LG", "Whirlpool", "Maytag", "GE"],
            (399, 1899),
        ),
    },
    "Cameras": {
        "Digital Cameras": (
            ["Mirrorless Camera", "DSLR Camera", "Point and Shoot Camera", "Action Camera"],
            ["Canon", "Nikon", "Sony", "GoPro", "Fujifilm"],
            (149, 3999),
        ),
        "Memory Cards": (
            ["microSD Card", "SD Card", "CompactFlash Card"],
            ["SanDisk", "Samsung", "Lexar", "Kingston"],
            (8, 199),
        ),
    },
    "Video Games": {
        "Consoles": (
            ["Nintendo Switch", "PlayStation 5", "Xbox Series X", "Xbox Series S"],
            ["Nintendo", "Sony", "Microsoft"],
            (199, 599),
        ),
        "Games": (
            ["Video Game", "Fire TV Game", "Game Bundle"],
            ["Nintendo", "Sony", "Microsoft", "EA", "Ubisoft", "Amazon"],
            (19, 69),
        ),
    },
}
# Product lines that only their brand makes, by how the kind's name starts.
LINE_BRANDS: tuple[tuple[str, str], ...] = (
    ("MacBook", "Apple"),
    ("iPhone", "Apple"),
    ("iPad", "Apple"),
    ("iMac", "Apple"),
    ("Apple TV", "Apple"),
    ("Galaxy", "Samsung"),
    ("Pixel", "Google"),
    ("Chromecast", "Google"),
    ("Google Home", "Google"),
    ("Fire", "Amazon"),
    ("Echo", "Amazon"),
    ("Nintendo Switch", "Nintendo"),
    ("PlayStation", "Sony"),
    ("Xbox", "Microsoft"),
    ("Roku", "Roku"),
)
# Kinds whose category price range would be implausible for them.
KIND_PRICES: dict[str, tuple[int, int]] = {
    "MacBook Air": (899, 1499),
    "MacBook Pro": (1299, 3499),
    "iMac": (1099, 2499),
    "iPad": (329, 1299),
    "iPhone 12": (499, 899),
    "iPhone 13": (599, 1099),
    "Galaxy S21": (499, 999),
    "Pixel 6": (399, 799),
    "Chromebook": (199, 599),
    "Nintendo Switch": (299, 349),
    "PlayStation 5": (399, 499),
    "Xbox Series X": (449, 499),
    "Xbox Series S": (249, 299),
    "Mini Fridge": (99, 299),
    "Fire Tablet": (49, 149),
    "Galaxy Tab": (149, 899),
    "Echo Dot": (29, 59),
    "Google Home": (49, 99),
    "Chromecast": (29, 49),
    "Fire TV Stick": (29, 59),
    "Roku Ultra": (79, 99),
    "Apple TV 4K": (129, 199),
}
COLOURS = [
    "Black",
    "White",
    "Silver",
    "Space Gray",
    "Blue",
    "Red",
    "Gold",
    "Rose Gold",
    "Green",
    "Yellow",
    "Orange",
    "Purple",
]
APPLIANCE_COLOURS = ["Stainless Steel", "Black Stainless Steel", "White", "Black"]
FEATURES = [
    "Bluetooth",
    "Wi-Fi",
    "Wireless",
    "Smart",
    "Energy Star",
    "Voice Control",
    "Fast Charging",
    "HDR",
    "Portable",
    "Touchscreen",
    "Refurbished",
    "Waterproof",
]
# Sizes that mean something for the category (screen, storage or capacity).
SIZES: dict[str, list[str]] = {
    "Laptops": ['13"', '14"', '15.6"', "256GB", "512GB", "1TB"],
    "Tablets": ['8"', '10.9"', "64GB", "128GB", "256GB"],
    "Desktops": ["256GB", "512GB", "1TB"],
    "Monitors": ['24"', '27"', '32"'],
    "TVs": ['43"', '55"', '65"', '75"'],
    "Smartphones": ["64GB", "128GB", "256GB", "512GB"],
    "Memory Cards": ["32GB", "64GB", "128GB", "256GB"],
    "Refrigerators": ["18 cu. ft.", "22 cu. ft.", "26 cu. ft."],
}


def line_brand(kind: str) -> str | None:
    """The only brand that makes ``kind``, when it is a branded product line."""
    return next((brand for start, brand in LINE_BRANDS if kind.startswith(start)), None)


def _makers(kinds: list[str], brands: list[str]) -> list[str]:
    """Brands that make the category's unbranded kinds: not those with their own line."""
    own_lines = {line_brand(k) for k in kinds}
    return [b for b in brands if b not in own_lines]


def generate(count: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    flat = [
        (dept, cat, kinds, _makers(kinds, brands), prices)
        for dept, cats in TAXONOMY.items()
        for cat, (kinds, brands, prices) in cats.items()
    ]
    for n in range(count):
        dept, cat, kinds, makers, prices = rng.choice(flat)
        kind = rng.choice(kinds)
        brand = line_brand(kind) or rng.choice(makers)
        lo, hi = KIND_PRICES.get(kind, prices)
        colour = rng.choice(APPLIANCE_COLOURS if dept == "Appliances" else COLOURS)
        feature = rng.sample(FEATURES, 2)
        sizes = SIZES.get(cat)
        size = rng.choice(sizes) if sizes and rng.random() < 0.6 else ""
        model = f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randint(100, 9999)}"
        # "Google Home H123", not "Google H123 Google Home".
        parts = (kind, model, size) if kind.startswith(brand) else (brand, model, size, kind)
        title = " ".join(p for p in (*parts, "-", colour) if p)
        price = round(rng.uniform(lo, hi) - 0.01, 2)
        sku = f"SKU{n + 1:07d}"
        yield {
            "id": sku,
            "title": title,
            "brand": brand,
            "category1": dept,
            "category2": cat,
            "category3": kind,
            "price": price,
            "rating": round(rng.uniform(2.5, 5.0), 1),
            "reviews": rng.randint(0, 5000),
            "colour": colour,
            "inStock": rng.random() < 0.85,
            "description": (
                f"The {brand} {kind} in {colour.lower()} brings {feature[0].lower()} and "
                f"{feature[1].lower()} to your home. Model {model}. "
                f"{'Available in ' + size + '. ' if size else ''}"
                f"Part of our {cat.lower()} range in {dept.lower()}."
            ),
            "url": f"https://shop.example.com/p/{sku.lower()}",
            "imageUrl": f"https://shop.example.com/img/{sku.lower()}.jpg",
        }


def demo_settings() -> dict[str, Any]:
    return {
        "idField": "id",
        "titleField": "title",
        "urlField": "url",
        "searchable": [
            {"name": "title", "weight": 3},
            {"name": "brand", "weight": 2},
            {"name": "category3", "weight": 1.5},
            {"name": "category2", "weight": 1.5},
            {"name": "category1", "weight": 1},
            {"name": "colour", "weight": 1},
            {"name": "description", "weight": 0.5},
        ],
        "navigations": [
            {"name": "brand", "displayName": "Brand", "or": True, "maxValues": 30},
            {"name": "category1", "displayName": "Department"},
            {"name": "category2", "displayName": "Category"},
            {"name": "category3", "displayName": "Type"},
            {"name": "colour", "displayName": "Colour", "or": True},
            {"name": "inStock", "displayName": "In stock"},
            {
                "name": "price",
                "displayName": "Price",
                "type": "Range",
                "ranges": [
                    {"high": 50},
                    {"low": 50, "high": 100},
                    {"low": 100, "high": 250},
                    {"low": 250, "high": 500},
                    {"low": 500, "high": 1000},
                    {"low": 1000},
                ],
            },
            {
                "name": "rating",
                "displayName": "Rating",
                "type": "Range",
                "ranges": [
                    {"low": 4.5},
                    {"low": 4, "high": 4.5},
                    {"low": 3, "high": 4},
                    {"high": 3},
                ],
            },
        ],
        "sortable": ["price", "rating", "reviews", "title"],
        "sayt": {
            "public": False,
            "publicFields": ["title", "url", "imageUrl", "price", "brand"],
            "navigations": ["brand", "category2"],
            "completionFields": ["title", "brand", "category2"],
        },
    }


# Typical storefront searches, with how often each was made: seeds SAYT suggestions.
DEMO_QUERIES = {
    "macbook": 731,
    "macbook air": 180,
    "macbook pro": 160,
    "iphone": 210,
    "iphone case": 90,
    "samsung tv": 80,
    "samsung": 200,
    "cooktop": 300,
    "electric cooktop": 120,
    "chromecast": 150,
    "chromebook": 140,
    "amazon fire tv": 110,
    "fire tv stick": 70,
    "nintendo switch": 130,
    "headphones": 120,
    "noise cancelling headphones": 60,
    "bluetooth speaker": 75,
    "smart tv": 90,
    "microwave": 60,
    "refrigerator": 50,
    "mini fridge": 40,
    "sandisk": 35,
    "sony headphones": 55,
    "bose": 65,
    "laptop": 170,
    "gaming laptop": 60,
    "apple watch": 80,
    "google home": 45,
    "echo dot": 50,
    "tablet": 90,
}
