"""The generated demo catalog: coherent brands, complete records, deterministic per seed."""

from __future__ import annotations

from searchgate.catalog.settings import CollectionSettings
from searchgate.demo import TAXONOMY, demo_settings, generate, line_brand

LINES = {
    "MacBook Air": "Apple",
    "MacBook Pro": "Apple",
    "iPhone 13": "Apple",
    "iPad": "Apple",
    "iMac": "Apple",
    "Apple TV 4K": "Apple",
    "Galaxy Tab": "Samsung",
    "Galaxy S21": "Samsung",
    "Pixel 6": "Google",
    "Chromecast": "Google",
    "Google Home": "Google",
    "Fire Tablet": "Amazon",
    "Fire TV Stick": "Amazon",
    "Echo Dot": "Amazon",
    "Nintendo Switch": "Nintendo",
    "PlayStation 5": "Sony",
    "Xbox Series X": "Microsoft",
    "Roku Ultra": "Roku",
}


def test_branded_lines_belong_to_their_brand() -> None:
    for kind, brand in LINES.items():
        assert line_brand(kind) == brand, kind
    for kind in ("Laptop", "Chromebook", "Smart TV", "Phone Case", "Video Game"):
        assert line_brand(kind) is None


def test_a_search_for_macbook_finds_only_apple_products() -> None:
    records = list(generate(5000))
    macbooks = [r for r in records if "macbook" in f"{r['title']} {r['description']}".lower()]
    assert len(macbooks) > 20
    assert {r["brand"] for r in macbooks} == {"Apple"}
    assert all(r["price"] >= 899 for r in macbooks)


def test_every_record_is_coherent_and_complete() -> None:
    records = list(generate(3000, seed=7))
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        kind = r["category3"]
        dept = TAXONOMY[r["category1"]]
        kinds, brands, _prices = dept[r["category2"]]
        assert kind in kinds
        owner = line_brand(kind)
        if owner is not None:
            assert r["brand"] == owner, r
        else:
            # A brand with its own line in a category makes nothing else there.
            assert r["brand"] in brands and r["brand"] not in {line_brand(k) for k in kinds}, r
        assert r["brand"] in r["title"] and kind in r["title"]
        assert isinstance(r["price"], float) and r["price"] > 0
        assert 2.5 <= r["rating"] <= 5.0 and isinstance(r["inStock"], bool)
        assert r["url"].startswith("https://") and r["imageUrl"].endswith(".jpg")
        assert r["colour"] and r["description"].startswith(f"The {r['brand']} {kind}")
    for r in records:
        if r["category1"] == "Appliances":
            assert r["colour"] in {"Stainless Steel", "Black Stainless Steel", "White", "Black"}
        if r["category2"] == "Headphones":
            assert '"' not in r["title"] and "cu. ft." not in r["title"]


def test_every_category_has_a_maker_for_its_unbranded_kinds() -> None:
    for dept in TAXONOMY.values():
        for category, (kinds, brands, _prices) in dept.items():
            owners = {line_brand(k) for k in kinds}
            if any(line_brand(k) is None for k in kinds):
                assert [b for b in brands if b not in owners], category


def test_the_same_seed_gives_the_same_catalog() -> None:
    assert list(generate(300, seed=11)) == list(generate(300, seed=11))
    assert list(generate(300)) == list(generate(300, seed=42))
    assert list(generate(300, seed=11)) != list(generate(300, seed=12))
    # A longer catalog starts with the shorter one.
    assert list(generate(500, seed=11))[:300] == list(generate(300, seed=11))


def test_the_catalog_covers_the_whole_taxonomy() -> None:
    records = list(generate(10_000))
    assert {r["category2"] for r in records} == {c for d in TAXONOMY.values() for c in d}
    assert len({r["brand"] for r in records}) >= 40


def test_demo_settings_are_valid_and_name_real_fields() -> None:
    settings = CollectionSettings.model_validate(demo_settings())
    record = next(generate(1))
    for name in [f.name for f in settings.searchable] + [n.name for n in settings.navigations]:
        assert name in record
    assert set(settings.sayt.public_fields) <= set(record)
    assert settings.sayt.public is False
