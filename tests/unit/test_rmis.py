from datetime import date, datetime

import pytest
from pydantic import ValidationError

from tools.rmis import EVENT_COLUMNS, RMISEvent, gtin_check_digit, is_valid_gtin14


def _event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "alpha:1",
        "retailer_id": "alpha",
        "brand_id": "acme",
        "campaign_id": "c1",
        "event_ts": datetime(2026, 7, 1, 13),
        "event_date": date(2026, 7, 1),
        "geo_id": "501",
        "placement": "sponsored_search",
        "audience_id": "all_shoppers",
        "gtin": "00012345678905",
        "retailer_item_id": "AM00000001",
        "impressions": 100,
        "clicks": 3,
        "conversions": 1,
        "spend": 1.25,
        "attributed_sales": 9.99,
        "attributed_units": 1,
    }
    return base | overrides


def test_gtin_check_digit_known_values() -> None:
    # UPC-A 036000291452 (GS1's worked example) padded to GTIN-14.
    assert gtin_check_digit("0003600029145") == 2
    assert is_valid_gtin14("00036000291452")
    assert not is_valid_gtin14("00036000291453")
    assert not is_valid_gtin14("3600029145")


def test_event_accepts_a_clean_record() -> None:
    event = RMISEvent(**_event())
    assert event.placement.value == "sponsored_search"
    assert list(event.model_dump()) == list(EVENT_COLUMNS)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gtin", "00012345678900", "not a valid GTIN-14"),
        ("clicks", 101, "exceed impressions"),
        ("spend", -1.0, "greater than or equal"),
        ("placement", "billboard", "Input should be"),
        ("viewability", 1.5, "less than or equal"),
    ],
)
def test_event_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RMISEvent(**_event(**{field: value}))
