"""Each piece of match evidence on its own (positive and negative cases), and decisions that
rest on it: an open world where the payee is often someone else with the same name."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from domain.matching import DefaultPlaces, SupplierIndex
from domain.matching import features as F
from domain.matching.index import descriptor_readings
from domain.matching.world import commonness, is_real_word
from domain.normalize import normalize_name
from domain.suppliers import Supplier, read_suppliers_csv


def holder(
    supplier_id: str, name: str, category: str = "business", city: str = "", state: str = "",
    country: str = "US", alt_name: str = "", code: str = "", address: str = "",
) -> Supplier:
    return Supplier(supplier_id=supplier_id, name=name, alt_name=alt_name, address=address, city=city,
                    state=state, postal_code="", country=country, category=category, code=code)


def kind(supplier: Supplier) -> F.HolderKind:
    return F.HolderKind.of(supplier, normalize_name(supplier.name))


COMMON = F.NameCommonness(0.5, 0.5)


def forms(name: str) -> F.PayeeForms:
    return F.PayeeForms.of(normalize_name(name).legal_suffixes)


def index_of(*suppliers: Supplier) -> SupplierIndex:
    index = SupplierIndex()
    for supplier in suppliers:
        index.upsert(supplier)
    return index


# ---------------------------------------------------------------------------- the rules


def test_everyday_names_are_common_and_invented_words_are_not():
    assert commonness(("THUNDER",)) > 0.6
    assert commonness(("SAFE", "HARBOR")) > 0.4
    assert commonness(("QUORVANTIX",)) < 0.3
    assert commonness(("VELMORIX", "CONTROL", "PRODUCTS")) == 0.0  # one invented word is enough
    assert commonness(("OF", "THE")) == 1.0


@pytest.mark.parametrize(("query", "name"), [("MILL", "MALL"), ("BARN", "BURN"), ("CARE", "CORE"), ("TEXT", "TENT")])
def test_a_real_word_changed_into_another_is_a_real_word_edit(query, name):
    assert F.real_word_edit(["OPEN", query], ["OPEN", name])
    assert F.token_credit(query, name, cut=False) == 0.0  # no typo credit either


@pytest.mark.parametrize(("query", "name"), [("SYTSEMS", "SYSTEMS"), ("TENNIIS", "TENNIS"), ("MILL", "MILL")])
def test_a_typo_is_no_real_word_edit(query, name):
    assert not F.real_word_edit(["ACME", query], ["ACME", name])
    assert is_real_word(name)


def test_an_affiliated_bodys_word_on_one_side_only():
    assert F.affiliated_body(["ACME", "FOUNDATION"], ["ACME"])
    assert F.affiliated_body(["ACME", "EMPLOYEES", "CREDIT", "UNION"], ["ACME"])
    assert F.affiliated_body(["ACME"], ["ACME", "ALUMNI", "ASSOCIATION"])
    # A company's political action committee and a body's advocacy fund, paid from campaign files.
    assert F.affiliated_body(["NORTHWIND", "TRADERS", "PAC"], ["NORTHWIND", "TRADERS"])
    assert F.affiliated_body(["PLANNED", "PARENTHOOD", "ADVOCACY", "FUND"], ["PLANNED", "PARENTHOOD"])
    assert F.affiliated_body(["NORTHWIND", "TRADERS", "POLITICAL", "COMMITTEE"], ["NORTHWIND", "TRADERS"])
    assert not F.affiliated_body(["ACME", "FOUNDATION"], ["ACME", "FOUNDATION"])
    assert not F.affiliated_body(["ACME", "TOOLS"], ["ACME", "TOOL"])


def test_legal_forms_of_different_families_conflict():
    srl = kind(holder("S1", "AUDIO WORKS SRL", country="IT"))
    assert F.holder_features(forms("AUDIO WORKS INC"), srl, COMMON)[:2] == (1.0, 0.0)
    assert F.holder_features(forms("ACME LLC"), kind(holder("S2", "ACME INC")), COMMON)[:2] == (1.0, 0.0)
    # INC, CORPORATION and COMPANY are one family; a payee without a form conflicts with nothing.
    assert F.holder_features(forms("ACME CORPORATION"), kind(holder("S3", "ACME INC")), COMMON)[:2] == (0.0, 0.0)
    assert F.holder_features(forms("ACME"), srl, COMMON)[:2] == (0.0, 0.0)
    # "Co., Ltd." is a limited company, not a US corporation.
    assert F.holder_features(forms("ACME INC"), kind(holder("S4", "ACME CO., LTD", country="CN")), COMMON)[:2] == (1.0, 0.0)


def test_a_company_is_not_a_nonprofit():
    nonprofit = kind(holder("N1", "BRANDT INC", category="nonprofit", state="CT"))
    assert F.holder_features(forms("THE BRANDT COMPANY"), nonprofit, COMMON)[1] == 1.0
    assert F.holder_features(forms("BRANDT LLC"), nonprofit, COMMON)[1] == 1.0
    assert F.holder_features(forms("BRANDT INC"), nonprofit, COMMON)[1] == 0.0  # nonprofits incorporate too
    assert F.holder_features(forms("BRANDT COMPANY"), kind(holder("B1", "BRANDT CO")), COMMON)[1] == 0.0
    fire_company = kind(holder("N2", "ACME FIRE COMPANY", category="nonprofit"))
    assert F.holder_features(forms("ACME FIRE COMPANY"), fire_company, COMMON)[1] == 0.0  # its own name says so


def test_national_bodies_and_their_place_conflicts():
    federal = kind(holder("G1", "Bureau of Reclamation", category="government", code="Federal - Executive"))
    national = kind(holder("N1", "NATIONAL WETLANDS FOUNDATION", category="nonprofit", state="MT"))
    chapter = kind(holder("N2", "AMERICAN LEGION", category="nonprofit", state="AK", alt_name="POST 16"))
    assert federal.national and national.national and not chapter.national
    query = F.QueryPlace.of(F.Location.of("PHOENIX", "AZ", None))
    values = dict(zip(F.FEATURES[F.PLACE_START:F.TAIL_START],
                      F.place_features(query, F.Location.of("MISSOULA", "MT", None), national, 0.5), strict=True))
    assert values["state_conflicts"] == 0.0 and values["national_place_conflict"] == 1.0
    values = dict(zip(F.FEATURES[F.PLACE_START:F.TAIL_START],
                      F.place_features(query, F.Location.of("DENVER", "CO", None), federal, 0.5), strict=True))
    assert values["state_conflicts"] == 0.0 and values["national_place_conflict"] == 0.0
    values = dict(zip(F.FEATURES[F.PLACE_START:F.TAIL_START],
                      F.place_features(query, F.Location.of("HOMER", "AK", None), chapter, 0.5), strict=True))
    assert values["state_conflicts"] == 1.0 and values["national_place_conflict"] == 0.0


def test_countries_and_default_places():
    foreign = kind(holder("S1", "LEISURE SOLUTIONS SL", country="ES"))
    nowhere = F.Location.of(None, None, None)
    names = F.FEATURES[F.PLACE_START:F.TAIL_START]

    def place(query: F.QueryPlace, location: F.Location, supplier: F.HolderKind) -> dict[str, float]:
        return dict(zip(names, F.place_features(query, location, supplier, 0.5), strict=True))

    # A US state says the payee is in the US; a default country is weaker evidence.
    assert place(F.QueryPlace.of(F.Location.of(None, "AZ", None)), nowhere, foreign)["country_conflicts"] == 1.0
    silent = place(F.QueryPlace.of(nowhere, default_country="US"), nowhere, foreign)
    assert silent["country_conflicts"] == 0.0 and silent["default_place_conflicts"] == 1.0
    assert place(F.QueryPlace.of(nowhere), nowhere, foreign)["default_place_conflicts"] == 0.0
    local = kind(holder("N1", "HOPE HOUSE", category="nonprofit", state="KS"))
    kansas = F.Location.of("BERN", "KS", None)
    assert place(F.QueryPlace.of(nowhere, default_state="AZ"), kansas, local)["default_place_conflicts"] == 1.0
    assert place(F.QueryPlace.of(nowhere, default_state="KS"), kansas, local)["default_place_agrees"] == 1.0
    # The record's own state wins over the source's default.
    own = place(F.QueryPlace.of(F.Location.of(None, "KS", None), default_state="AZ"), kansas, local)
    assert own["default_place_conflicts"] == 0.0 and own["state_agrees"] == 1.0
    # ... and so does its own ZIP where it agrees, with no state given; a town alone does not
    # (a MARION or a LINCOLN is in many states).
    town = place(F.QueryPlace.of(F.Location.of("BERN", None, None), default_state="AZ"), kansas, local)
    assert town["default_place_conflicts"] == 1.0 and town["city_agrees"] == 1.0
    zip_code = place(F.QueryPlace.of(F.Location.of(None, None, "66411"), default_state="AZ"),
                     F.Location.of("BERN", "KS", "66411"), local)
    assert zip_code["default_place_conflicts"] == 0.0 and zip_code["postal_agrees"] == 1.0
    # A name that names the holder's state places the payee there whatever the source's default.
    chorus = F.QueryPlace.for_payee(normalize_name("KANSAS MENNONITE MENS CHORUS"), nowhere, default_state="NV")
    assert place(chorus, kansas, local)["default_place_conflicts"] == 0.0
    choir = F.QueryPlace.for_payee(normalize_name("MENNONITE MENS CHORUS"), nowhere, default_state="NV")
    assert place(choir, kansas, local)["default_place_conflicts"] == 1.0


def test_an_unplaced_payee_against_a_local_body_counts_the_names_commonness():
    local = kind(holder("N1", "HOPE HOUSE", category="nonprofit", state="KS"))
    names = F.FEATURES[F.PLACE_START:F.TAIL_START]
    unplaced = dict(zip(names, F.place_features(
        F.QueryPlace.of(F.Location.of(None, None, None)), F.Location.of("BERN", "KS", None), local, 0.8), strict=True))
    assert unplaced["local_nonprofit_unplaced"] == 0.8
    placed = dict(zip(names, F.place_features(
        F.QueryPlace.of(F.Location.of(None, "KS", None)), F.Location.of("BERN", "KS", None), local, 0.8), strict=True))
    assert placed["local_nonprofit_unplaced"] == 0.0


@pytest.mark.parametrize(("name", "states"), [
    ("KENTUCKY CHRISTIAN SCHOOL", {"KY"}), ("FAMILY PLANNING ASSOCIATION OF MAINE", {"ME"}),
    ("WEST VIRGINIA BAR ASSOCIATION", {"WV"}), ("NEW YORK AND NEW JERSEY TRAIL CONFERENCE", {"NY", "NJ"}),
    ("HOPE HOUSE", set()), ("NEWARK YORK CLUB", set()),
])
def test_the_states_a_name_names(name, states):
    assert F.states_named(tuple(name.split())) == states


def test_a_nonprofit_named_after_its_own_state_is_placed_by_its_name():
    school = kind(holder("N1", "KENTUCKY CHRISTIAN SCHOOL", category="nonprofit", state="KY"))
    names = F.FEATURES[F.PLACE_START:F.TAIL_START]
    unplaced = F.QueryPlace.of(F.Location.of(None, None, None)).naming(("KENTUCKY", "CHRISTIAN", "SCHOOL"))

    def local_term(state: str) -> float:
        values = F.place_features(unplaced, F.Location.of("CAMPBELLSVILLE", state, None), school, 0.7)
        return dict(zip(names, values, strict=True))["local_nonprofit_unplaced"]

    assert local_term("KY") == 0.0
    assert local_term("TN") == 0.7  # a namesake in another state: the name does not place it there


def test_default_places_by_source():
    defaults = DefaultPlaces.parse("US", {"ap-scottsdale": "US-AZ", "ap-toronto": "CA"})
    assert defaults.for_source("ap-scottsdale") == ("AZ", "US")
    assert defaults.for_source("ap-toronto") == ("", "CA")
    assert defaults.for_source("elsewhere") == ("", "US")


@pytest.mark.parametrize(("key", "reading"), [
    ("ACME WIRELESS", "ACME"), ("ACME MERCHANT ACCOUNT", "ACME"), ("MAPLE COUNTY GENERAL FUND", "MAPLE COUNTY"),
    ("ACME US", "ACME"), ("ACME SALES", "ACME"),
])
def test_descriptor_tails_are_read_without(key, reading):
    assert descriptor_readings(key) == (reading,)


@pytest.mark.parametrize("key", ["BANK OF AMERICA", "FIRE SERVICES", "ACME TOOLS", "SERVICES"])
def test_no_reading_that_leaves_no_name(key):
    assert descriptor_readings(key) == ()


# ---------------------------------------------------------------------------- decisions


def evidence_of(result) -> dict[str, float]:
    return {term.feature: term.contribution for term in result.evidence}


def test_explanation_is_the_utility_of_the_decision():
    index = index_of(holder("O1", "QUORVANTIX INC"))
    result = index.match("Quorvantix, Inc.")
    assert result.decision == "matched"
    terms = evidence_of(result)
    assert {"exact", "similarity", "bias"} <= set(terms)
    # The probability is the softmax of the summed contributions against "none" at 0.
    utility = sum(terms.values())
    assert result.score == pytest.approx(math.exp(utility) / (1 + math.exp(utility)), abs=1e-3)
    assert result.candidates[0].supplier_id == "O1"


def test_a_foreign_namesake_of_a_us_company_is_not_matched():
    index = index_of(holder("O1", "AUDIO WORKS SRL", country="IT"))
    result = index.match("AUDIO WORKS INC", city="PHOENIX", state="AZ")
    assert result.decision != "matched"
    assert evidence_of(result)["legal_form_conflict"] < 0 and evidence_of(result)["country_conflicts"] < 0


def test_a_company_and_its_foundation_are_different_payees():
    index = index_of(holder("F1", "ACME FOUNDATION", category="nonprofit", city="AUSTIN", state="TX"))
    result = index.match("ACME LLC", city="AUSTIN", state="TX")
    assert result.decision != "matched"


def test_a_one_letter_change_between_real_words_is_not_matched():
    index = index_of(holder("N1", "BRIGHT MALL", category="nonprofit", city="SHERIDAN", state="WY"))
    result = index.match("BRIGHT MILL INC")
    assert result.decision == "none"
    assert evidence_of(result)["real_word_edit"] < 0


def test_an_everyday_name_of_a_local_body_elsewhere_is_not_matched_on_name_alone():
    index = index_of(holder("N1", "SAFE HARBOR", category="nonprofit", city="BERN", state="KS"))
    assert index.match("SAFE HARBOR").decision != "matched"
    # ... but the same name where the payee is, is.
    assert index.match("SAFE HARBOR", city="BERN", state="KS").decision == "matched"


def test_one_organisation_registered_several_times_is_matched_deterministically():
    copies = [holder(f"OUI00{n}", "ZELTRONIX INC") for n in (3, 1, 2)]
    result = index_of(*copies).match("ZELTRONIX INC")
    assert result.decision == "matched" and result.supplier_id == "OUI001"
    assert "registered 3 times" in result.reason
    # The explanation sums to the group's score.
    utility = sum(term.contribution for term in result.evidence)
    assert result.score == pytest.approx(math.exp(utility) / (1 + math.exp(utility)), abs=1e-3)
    # Entries of one name at different addresses may be two firms (the registry gives their towns
    # only inside the address): not copies.
    offices = [holder(f"OUI00{n}", "ZELTRONIX INC", address=f"{n} MAIN ST | TOWN {n} IL") for n in (2, 1)]
    result = index_of(*offices).match("ZELTRONIX INC")
    assert result.decision != "matched" and "registered" not in result.reason
    # A company's rows in one town and ZIP are one office, its street spelt "One" or "1".
    spelt = [holder("OUI002", "ZELTRONIX INC", address="One Zeltronix Way | Redmond WA 98052"),
             holder("OUI001", "ZELTRONIX INC", address="1 Zeltronix Way | REDMOND Wa. 98052")]
    result = index_of(*spelt).match("ZELTRONIX INC")
    assert result.decision == "matched" and result.supplier_id == "OUI001" and "registered 2 times" in result.reason
    # ... and in two towns, two firms; nor is a town without a ZIP one office.
    towns = [holder("OUI002", "ZELTRONIX INC", address="1 Zeltronix Way | Redmond WA 98052"),
             holder("OUI001", "ZELTRONIX INC", address="1 Zeltronix Way | Austin TX 78701")]
    assert index_of(*towns).match("ZELTRONIX INC").decision != "matched"
    no_zip = [holder("OUI002", "ZELTRONIX INC", address="1 Zeltronix Way | Redmond WA"),
              holder("OUI001", "ZELTRONIX INC", address="20 Lake Dr | Redmond WA")]
    assert index_of(*no_zip).match("ZELTRONIX INC").decision != "matched"
    # Chapters are not copies: they differ in place and second name.
    posts = [holder(f"N{n}", "AMERICAN LEGION", "nonprofit", city=f"TOWN {n}", state="AK", alt_name=f"POST {n}")
             for n in range(3)]
    assert index_of(*posts).match("AMERICAN LEGION").decision != "matched"


def test_a_national_body_paid_at_a_regional_office_is_matched():
    # Other names beside it, so that its words are as rare as in a real list.
    others = [holder(f"B{i}", name) for i, name in enumerate(("ACME TOOLS", "NORTHWIND TRADERS", "QUORVANTIX"))]
    index = index_of(holder("G1", "Bureau of Reclamation", category="government", city="Denver", state="CO",
                            code="Federal - Executive"), *others)
    result = index.match("BUREAU OF RECLAMATION", city="PHOENIX", state="AZ")
    assert result.decision == "matched"
    assert not {"state_conflicts", "city_conflicts"} & set(evidence_of(result))
    # A city government of the same name elsewhere is another body.
    city = index_of(holder("G2", "Bureau of Reclamation", category="government", city="Denver", state="CO",
                           code="City"))
    assert city.match("BUREAU OF RECLAMATION", city="PHOENIX", state="AZ").decision == "none"


def test_a_descriptor_tail_still_finds_the_supplier():
    index = index_of(holder("O1", "Quandrix Solutions Inc."))
    result = index.match("QUANDRIX SOLUTIONS MERCHANT ACCOUNT")
    assert result.decision in ("matched", "ambiguous") and result.supplier_id == "O1"
    assert result.candidates[0].supplier_id == "O1"


def test_a_company_is_not_a_government_body():
    district = kind(holder("G1", "Desert Recreation District", category="government", state="CA"))
    assert F.holder_features(forms("DESERT RECREATION INC"), district, COMMON)[1] == 1.0
    assert F.holder_features(forms("DESERT RECREATION DISTRICT"), district, COMMON)[1] == 0.0


def test_a_name_ending_in_america_is_a_us_payee():
    index = index_of(holder("O1", "zqt GmbH", country="DE"))
    result = index.match("ZQT AMERICA")
    assert result.decision != "matched"
    assert evidence_of(result)["country_conflicts"] < 0


@pytest.mark.parametrize(("query", "name"), [("SYSTEM", "SYSTEMS"), ("TOOLS", "TOOL")])
def test_singular_and_plural_are_no_real_word_edit(query, name):
    assert not F.real_word_edit(["ACME", query], ["ACME", name])


def test_a_misspelt_affiliated_word_is_no_affiliated_body():
    assert not F.affiliated_body(["UNOIN", "PACIFIC", "RAILROAD"], ["UNION", "PACIFIC", "RAILROAD"])


@pytest.mark.parametrize("written", ["U.S.", "USA", "United States", "us"])
def test_the_united_states_however_written(written):
    assert F.country_code(written) == "US"


def test_default_places_are_validated():
    from pydantic import ValidationError

    from streams.settings import Settings

    assert Settings(source_default_places={"ap-scottsdale": "US-AZ"}).source_default_places == {"ap-scottsdale": "US-AZ"}
    with pytest.raises(ValidationError):
        Settings(source_default_places={"ap-scottsdale": "Arizona"})  # "US-AZ": country, then state


def name_evidence(index: SupplierIndex, payee: str, name_key: str) -> dict[str, float]:
    features = index._name_features(normalize_name(payee).key, name_key, truncation_possible=False)
    return {"words_substituted": features.words_substituted, "payee_words_unmatched": features.payee_words_unmatched}


def test_a_word_in_place_of_another_is_a_sibling_body():
    index = index_of(holder("N1", "MADISON CENTRAL BAND BOOSTERS", "nonprofit", state="KY"),
                     holder("N2", "OTHER FIELD TRUST", "nonprofit", state="KY"))
    sibling = name_evidence(index, "MADISON SOUTHERN BAND BOOSTERS", "MADISON CENTRAL BAND BOOSTERS")
    assert sibling["words_substituted"] > 0.1
    # A typo, a dropped word and a swapped order are no substitution.
    for payee in ("MADISON CENTRL BAND BOOSTERS", "MADISON BAND BOOSTERS", "CENTRAL MADISON BAND BOOSTERS"):
        assert name_evidence(index, payee, "MADISON CENTRAL BAND BOOSTERS")["words_substituted"] < 0.05, payee
    result = index.match("MADISON SOUTHERN BAND BOOSTERS", state="KY")
    assert result.decision != "matched"
    assert evidence_of(result).get("word_swapped", 0.0) < 0


def test_a_whole_word_swapped_in_a_long_name_is_a_sibling_body():
    name = "BINGHAM CREEK REGIONAL PARK AUTHORITY"
    index = index_of(holder("G1", name, "government", state="UT"),
                     holder("G2", "OTHER FIELD TRUST", "nonprofit", state="UT"))
    key = normalize_name(name).key
    assert index._name_features("BINGHAM CREEK REGIONAL WATER AUTHORITY", key, False).word_swapped
    # A typo, a dropped or an added word, a plural and a shifted space are no swap.
    for payee in ("BINGHAM CREEK REGIONAL PRAK AUTHORITY", "BINGHAM CREEK PARK AUTHORITY",
                  "BINGHAM CREEK REGIONAL PARK AUTHORITY DISTRICT", "BINGHAM CREEK REGIONAL PARKS AUTHORITY",
                  "BINGHAM CREEK REGINOALP ARK AUTHORITY"):
        assert not index._name_features(normalize_name(payee).key, key, False).word_swapped, payee
    assert not index._name_features("UNITED ELECTRONIC INDUSTRY", "UNITED ELECTRONIC INDUSTRIES", False).word_swapped
    assert F._plural_of("TECHNOLOGY", "TECHNOLOGIES") and F._plural_of("BOX", "BOXES")
    assert not any(F._plural_of(a, b) for a, b in (("U", "US"), ("BAS", "BASS"), ("WAR", "WARES")))
    # A word the payee has as itself is no abbreviation of another: FIRE is no FAIRLEA.
    fire = index._name_features("SHIRLEY VOLUNTEER FIRE DEPARTMENT", "FAIRLEA VOLUNTEER FIRE DEPARTMENT", False)
    assert fire.word_swapped and fire.name_words_unmatched > 0
    # ... yet a repeated word's misspelt copy still counts as that word.
    repeated = index._name_features("WALLA WALA CLINIC", "WALLA WALLA CLINIC", False)
    assert repeated.query_coverage > 0.85 and not repeated.word_swapped
    # ... and one word found once is found once: WALLA WALLA is more than WALLA.
    twice = index._name_features("WALLA WALLA CLINIC", "WALLA CLINIC", False)
    once = index._name_features("WALLA CLINIC", "WALLA CLINIC", False)
    assert twice.query_coverage < 0.9 < once.query_coverage
    result = index.match("BINGHAM CREEK REGIONAL WATER AUTHORITY", state="UT")
    assert result.decision != "matched"
    assert evidence_of(result)["word_swapped"] < 0


def test_payee_words_the_name_lacks_are_counted_descriptor_words_aside():
    index = index_of(holder("G1", "Tillman County", "government", state="OK"),
                     holder("G2", "Other Place Authority", "government", state="OK"))
    assert name_evidence(index, "TILLMAN COUNTY SHERIFFS OFFICE", "TILLMAN COUNTY")["payee_words_unmatched"] > 0.3
    assert name_evidence(index, "TILLMAN COUNTY GENERAL FUND", "TILLMAN COUNTY")["payee_words_unmatched"] == 0.0
    assert name_evidence(index, "TILLMAN COUNTTY", "TILLMAN COUNTY")["payee_words_unmatched"] == 0.0  # a typo
    assert evidence_of(index.match("TILLMAN COUNTY SHERIFFS OFFICE", state="OK")).get("payee_words_unmatched", 0) < 0


def test_a_foreign_legal_form_places_a_holder_abroad_whatever_the_registry_says():
    # A device makers' registry lists German and Korean companies with country "US".
    assert kind(holder("O1", "tci GmbH", country="US")).country == F.ABROAD
    assert kind(holder("O2", "tci GmbH", country="DE")).country == "DE"
    assert kind(holder("O3", "TCI INC", country="US")).country == "US"
    # With a US state the form is a word: an Assembly of God church, a Nevada body.
    assert kind(holder("C1", "GLAD TIDINGS AG", "nonprofit", state="AK")).country == "US"
    assert kind(holder("C2", "OUR DAILY BREAD NV", "nonprofit", state="NV")).country == "US"
    assert F.countries_differ("US", F.ABROAD) and not F.countries_differ("DE", F.ABROAD)
    assert not F.countries_differ("", "US") and F.countries_differ("DE", "SE")


def test_a_name_says_where_its_holder_is():
    assert F.country_in_name(normalize_name("ACME AMERICA")) == "US"
    assert F.country_in_name(normalize_name("MARA SYSTEMS CONSULTING AB")) == F.ABROAD
    assert F.country_in_name(normalize_name("ACME INC")) == ""
    assert F.country_in_name(normalize_name("CITY OF HENDERSON NV")) == ""  # Nevada, not a Dutch NV
    # A US state on the record outweighs a form the name ends in.
    church = F.QueryPlace.for_payee(normalize_name("GLAD TIDINGS AG"), F.Location.of(None, "AK", None))
    assert church.country == "US" and not church.country_from_name
    # A payee whose form says it is abroad is not held to the source's default country.
    swedish = kind(holder("S1", "MARA SYSTEMS CONSULTING AB", country="SE"))
    place = F.QueryPlace.for_payee(
        normalize_name("Mara Systems Consulting Ab"), F.Location.of(None, None, None), default_country="US")
    values = dict(zip(F.FEATURES[F.PLACE_START:F.TAIL_START],
                      F.place_features(place, F.Location.of(None, None, None), swedish, 0.0), strict=True))
    assert values["country_conflicts"] == 0.0 and values["default_place_conflicts"] == 0.0
    # "ZQT AMERICA" against a German holder: the countries differ once, not twice.
    german = kind(holder("D1", "zqt GmbH", country="DE"))
    place = F.QueryPlace.for_payee(normalize_name("ZQT AMERICA"), F.Location.of(None, None, None), default_country="US")
    values = dict(zip(F.FEATURES[F.PLACE_START:F.TAIL_START],
                      F.place_features(place, F.Location.of(None, None, None), german, 0.0), strict=True))
    assert values["country_conflicts"] == 1.0 and values["default_place_conflicts"] == 0.0


def test_a_us_church_whose_name_ends_in_a_foreign_form_is_no_foreign_holder():
    index = index_of(holder("C1", "GLAD TIDINGS AG", "nonprofit", city="ANCHORAGE", state="AK"),
                     holder("C2", "OTHER FELLOWSHIP", "nonprofit", state="AK"))
    for payee in ("GLAD TIDINGS", "GLAD TIDINGS AG"):
        result = index.match(payee, city="Anchorage", state="AK", country="US")
        assert result.decision == "matched" and "country_conflicts" not in evidence_of(result), payee


def test_an_acronym_company_registered_abroad_is_not_a_us_payee():
    index = index_of(holder("O1", "tci GmbH", country="US"))
    result = index.match("TCI AMERICA")
    assert result.decision != "matched"
    assert evidence_of(result)["country_conflicts"] < 0


# ---------------------------------------------------------------------------- the street


def church(supplier_id: str, address: str, postal_code: str, city: str = "LOUISVILLE") -> Supplier:
    return Supplier(supplier_id=supplier_id, name="GRACE COMMUNITY CHURCH", alt_name="", address=address,
                    city=city, state="KY", postal_code=postal_code, country="US", category="nonprofit", code="X20")


NAMESAKES = (
    church("N1", "4330 CRITTENDEN DR", "40209"),
    church("N2", "1200 BERRY BLVD STE 4", "40209"),  # same name, same ZIP, another street
    church("N3", "PO BOX 43443", "40245"),
)


def place_values(place: F.QueryPlace, location: F.Location, street: str, supplier: Supplier) -> dict[str, float]:
    return dict(zip(F.FEATURES[F.PLACE_START:F.TAIL_START],
                    F.place_features(place, location, kind(supplier), 0.5, street), strict=True))  # type: ignore[arg-type]


def test_street_agreement_counts_only_where_the_rest_of_the_place_does_not_disagree():
    louisville = F.Location.of("LOUISVILLE", "KY", "40209")
    payee = F.QueryPlace.of(louisville)
    assert place_values(payee, louisville, "agree", NAMESAKES[0])["street_agrees"] == 1.0
    # "4330 CRITTENDEN" in another town or ZIP is another street of that name.
    elsewhere = F.QueryPlace.of(F.Location.of("LEXINGTON", "KY", None))
    assert place_values(elsewhere, louisville, "agree", NAMESAKES[0])["street_agrees"] == 0.0
    other_zip = F.QueryPlace.of(F.Location.of(None, None, "40245"))
    assert place_values(other_zip, louisville, "agree", NAMESAKES[0])["street_agrees"] == 0.0
    nowhere = F.QueryPlace.of(F.Location.of(None, None, None))
    assert place_values(nowhere, louisville, "agree", NAMESAKES[0])["street_agrees"] == 0.0
    against = place_values(payee, louisville, "disagree", NAMESAKES[0])
    assert against["street_conflicts"] == 1.0 and against["street_agrees"] == 0.0
    unknown = place_values(payee, louisville, "unknown", NAMESAKES[0])
    assert unknown["street_agrees"] == unknown["street_conflicts"] == 0.0
    # A national body's registered street is its head office: another street is no conflict.
    national = Supplier(supplier_id="N9", name="NATIONAL WETLANDS FOUNDATION", address="1 MAIN ST", state="MT",
                        country="US", category="nonprofit")
    head_office = place_values(payee, F.Location.of("MISSOULA", "MT", None), "disagree", national)
    assert head_office["street_conflicts"] == 0.0 and head_office["national_place_conflict"] == 1.0
    # ... and in its own town another street is no sign of a namesake elsewhere either.
    at_home = place_values(payee, louisville, "disagree", national)
    assert at_home["street_conflicts"] == at_home["national_place_conflict"] == 0.0


def test_the_index_keeps_each_suppliers_street_key_from_upsert():
    index = index_of(*NAMESAKES, holder("G1", "TOWN OF SHARON", "government"))
    assert [index.entries[n].street for n in ("N1", "N2", "N3", "G1")] == [
        "4330 CRITTENDEN", "1200 BERRY", "PO BOX 43443", None,
    ]


def test_street_and_zip_decide_between_namesakes_at_one_place():
    index = index_of(*NAMESAKES)
    place = {"city": "Louisville", "state": "KY", "postal_code": "40209"}
    assert index.match("Grace Community Church", **place).decision == "ambiguous"
    result = index.match("Grace Community Church", **place, address_lines=["4330 Crittenden Drive, Suite 2"])
    assert result.decision == "matched" and result.supplier_id == "N1", result
    assert evidence_of(result)["street_agrees"] > 0
    assert "street" in result.reason
    runner = next(view for view in result.candidates if view.supplier_id == "N2")
    assert {term.feature: term.contribution for term in runner.evidence}["street_conflicts"] < 0
    # The street and the ZIP without city or state say as much.
    bare = index.match("GRACE COMMUNITY CHURCH", postal_code="40209", address_lines="4330 N Crittenden Dr")
    assert bare.decision == "matched" and bare.supplier_id == "N1"


def test_another_street_is_evidence_against():
    index = index_of(Supplier(supplier_id="Q1", name="QUORVANTIX INC", address="12 ELM ST", city="AUSTIN",
                              state="TX", postal_code="78701", country="US", category="business"))
    plain = index.match("Quorvantix Inc", city="Austin", state="TX")
    moved = index.match("Quorvantix Inc", city="Austin", state="TX", address_lines=["900 Oak Avenue"])
    assert evidence_of(moved)["street_conflicts"] < 0
    assert moved.score < plain.score
    assert "street differs" in moved.reason or moved.decision != "matched"


def test_a_street_alone_does_not_pick_one_of_namesakes_in_many_towns():
    # One namesake per town, each on a Main Street: "100 MAIN ST" is in many more towns than these.
    towns = ("PADUCAH", "BEREA", "HAZARD", "MURRAY")
    index = index_of(*(church(f"T{i}", f"{100 + i} MAIN ST", "", city) for i, city in enumerate(towns)))
    result = index.match("Grace Community Church", address_lines=["100 Main Street"])
    assert result.decision != "matched" and "street_agrees" not in evidence_of(result)


@pytest.mark.parametrize("lines", [
    None, [], "", ["ATTN: ACCOUNTS PAYABLE"], ["Suite 400"], ["P.O. Box 77"], ["c/o Finance"], ["???"],
])
def test_messy_or_incomparable_address_lines_are_neutral(lines):
    index = index_of(*NAMESAKES[:2])  # both at a street: a box is no evidence for or against
    place = {"city": "Louisville", "state": "KY", "postal_code": "40209"}
    without = index.match("Grace Community Church", **place)
    with_lines = index.match("Grace Community Church", **place, address_lines=lines)
    # A box against a street, or no street number at all: neither for nor against anyone.
    assert with_lines == without


def test_any_foreign_form_places_a_holder_abroad():
    assert F.has_foreign_form(normalize_name("ACME PTY LTD").legal_suffixes)
    assert not F.has_foreign_form(normalize_name("ACME CO LTD").legal_suffixes)
    assert kind(holder("O1", "ACME PTY LTD", country="")).country == F.ABROAD


def test_name_agreement_never_counts_against_a_candidate():
    for feature in ("similarity", "query_coverage", "name_coverage"):
        assert F.WEIGHTS[F.FEATURES.index(feature)] >= 0, feature


@pytest.mark.parametrize(("written", "lone"), [
    ("HARRIS", True), ("Harris Inc", True), ("THE HARRIS COMPANY", True), ("HARRIS & CO", True), ("SMITH'S", True),
    ("DAVID HARRIS", False), ("HARRIS CONTROLS", False), ("HARRIS DBA ACME TOOLS", False),
    ("DELL", False),  # a surname, but a rare one: the name is still telling
    ("XEROX", False),
])
def test_a_lone_common_surname(written, lone):
    assert F.lone_common_surname(normalize_name(written)) is lone


@pytest.mark.parametrize(("written", "person"), [
    ("DAVID CLARK", True), ("Mary A. Jones", True), ("CLARK, DAVID", True), ("CLARK DAVID", True),
    ("DR DAVID CLARK JR", True), ("J SMITH", True), ("MR CLARK", True), ("DAVID CLARK CPA", True),
    ("J ZYGMUNT", False), ("J CREW", False), ("MR", False), ("LAUREL CHURCH OF CHRIST", False),
    # Census surnames that are far more often everyday words.
    ("GRACE CHURCH", False), ("GEORGIA POWER", False), ("CHASE BANK", False), ("JOHN AND SONS", False),
    ("JOHN AND MARY SMITH", True), ("JOHN WHITE", True), ("BILL SMITH", True), ("DAVID YOUNG", True),
    ("DAVID CLARK COMPANY", False), ("David Clark Inc", False), ("DAVID CLARK DBA ACME TOOLS", False),
    ("HARRIS CONTROLS", False), ("JOHNSON CONTROLS", False), ("ACTION TARGET", False), ("DAVID", False),
])
def test_a_person_s_name(written, person):
    assert F.reads_as_person(normalize_name(written)) is person


def test_a_person_s_name_is_not_matched_to_a_company_named_after_one_unless_its_town_agrees():
    index = SupplierIndex(match_threshold=0.7)
    index.upsert(holder("D1", "David Clark Company", city="WORCESTER", state="MA"))
    index.upsert(holder("X1", "Xerox Corporation", city="NORWALK", state="CT"))
    result = index.match("DAVID CLARK")
    assert result.score >= index.match_threshold
    assert (result.decision, result.supplier_id) == ("ambiguous", "D1")
    assert result.reason.startswith("a person's name")
    assert ("person_name", 1.0, 0.0) in result.evidence
    assert index.match("DAVID CLARK", city="Worcester", state="MA").decision == "matched"
    assert index.match("DAVID CLARK CO").decision == "matched"


def test_a_lone_common_surname_is_not_matched_unless_its_town_zip_or_street_agrees():
    # A threshold the tiny index's name statistics let a lone name clear.
    index = SupplierIndex(match_threshold=0.7)
    index.upsert(holder("H1", "Harris Corporation", city="MELBOURNE", state="FL", address="1025 W NASA BLVD"))
    index.upsert(holder("X1", "Xerox Corporation", city="NORWALK", state="CT"))
    for written, place in (("HARRIS", {}), ("Harris Inc", {}), ("HARRIS", {"state": "FL"})):
        result = index.match(written, **place)
        # Likely enough among the suppliers listed; the guard, not the score, keeps it to review.
        assert result.score >= index.match_threshold
        assert (result.decision, result.supplier_id) == ("ambiguous", "H1")
        assert result.reason.startswith("a lone common surname")
        assert ("lone_common_surname", 1.0, 0.0) in result.evidence
    assert index.match("HARRIS", city="Melbourne", state="FL").decision == "matched"
    assert index.match("HARRIS", state="FL", postal_code="32904", address_lines="1025 W Nasa Blvd").decision == "matched"
    # A street with a state alone is that street in any of the state's towns: no pin.
    assert index.match("HARRIS", state="FL", address_lines="1025 W Nasa Blvd").decision == "ambiguous"
    assert index.match("XEROX").decision == "matched"


@pytest.mark.parametrize(("query", "name", "edit"), [
    ("ZENTRIV", "ZENTRIX", True), ("BELKO", "BELCO", True), ("BELCCO", "BELCO", True),  # another company as often as a slip
    ("VIDEOSWICTH", "VIDEOSWITCH", False),  # neighbours swapped: a slip of the keyboard
    ("ZENTRIX", "ZENTRIX", False), ("SYSTEMS", "SYSTEMZ", True),
])
def test_an_invented_word_one_letter_apart(query, name, edit):
    assert F.invented_word_edit([query, "INC"], [name, "INC"]) is edit



def test_a_payee_likely_one_of_several_suppliers_goes_to_review_not_none():
    # From the committed open-world slice: a misspelt county with its county seat, where every
    # county of a like name is a candidate and none alone is likely; together they are.
    slice_dir = Path(__file__).resolve().parents[1] / "fixtures" / "open_world"
    index = SupplierIndex()
    for supplier in read_suppliers_csv(slice_dir / "suppliers.csv"):
        index.upsert(supplier)  # type: ignore[arg-type]
    result = index.match("Oraange County", city="Santa Ana", state="CA")
    assert result.score < index.review_floor  # no candidate alone is even worth a review ...
    assert result.decision == "ambiguous"  # ... but that it is one of them is
    assert "candidates are together" in result.reason
    assert "GOV61321363" in {view.supplier_id for view in result.candidates}  # Orange County, CA
    assert index.match("Harborview Tool And Die", city="Santa Ana", state="CA").decision == "none"


def test_a_bulk_load_pauses_cyclic_collection_and_always_resumes_it():
    import gc

    from domain.matching import gc_paused

    assert gc.isenabled()
    index = SupplierIndex()
    seen = []

    def suppliers():
        for n in range(3):
            seen.append(gc.isenabled())
            yield holder(f"B{n}", f"QUORVANTIX {n}")

    index.upsert_many(suppliers())
    assert seen == [False, False, False] and gc.isenabled() and len(index) == 3
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a bad row")
    assert gc.isenabled()


def test_a_registry_rows_town_line_is_its_place():
    maker = holder("OUI1", "QUORVANTIX SYSTEMS INC", address="10300 Energy Dr | Spring TX 77389")
    others = [holder(f"B{i}", name) for i, name in enumerate(("ACME TOOLS", "NORTHWIND TRADERS", "VELMORIX"))]
    index = index_of(maker, *others)
    assert index.entries["OUI1"].location == F.Location.of("SPRING", "TX", "77389")
    assert index.entries["OUI1"].street == "10300 ENERGY"  # the street alone, without the town line
    at_home = index.match("QUORVANTIX SYSTEMS INC", city="Spring", state="TX", address_lines="10300 Energy Drive")
    assert at_home.decision == "matched"
    assert {"city_agrees", "state_agrees", "street_agrees"} <= set(evidence_of(at_home))
    assert (at_home.candidates[0].city, at_home.candidates[0].state) == ("SPRING", "TX")  # for the reviewer
    # Paid in another state: one term for a company away from its head office, never the
    # state, town and ZIP conflicts of a local body, and never enough alone to match.
    elsewhere = index.match("QUORVANTIX SYSTEMS INC", city="Phoenix", state="AZ")
    terms = evidence_of(elsewhere)
    assert terms["company_place_conflict"] < 0 and "state_conflicts" not in terms and "city_conflicts" not in terms
    assert elsewhere.score < at_home.score and "company paid away" in elsewhere.reason
    # ... nor in another town of its own state: the state alone is no agreement then.
    same_state = index.match("QUORVANTIX SYSTEMS INC", city="Austin", state="TX")
    assert "state_agrees" not in evidence_of(same_state) and same_state.score == pytest.approx(elsewhere.score)
    # A source's default state says nothing of a company, for or against.
    unplaced = index.match("QUORVANTIX SYSTEMS INC").score
    for default in ("AZ", "TX"):
        by_default = index.match("QUORVANTIX SYSTEMS INC", default_state=default)
        assert not {"default_place_conflicts", "default_place_agrees"} & set(evidence_of(by_default))
        assert by_default.score == pytest.approx(unplaced)


def test_company_place_conflict_is_for_companies_only():
    payee = F.QueryPlace.of(F.Location.of("PHOENIX", "AZ", None))
    company = place_values(payee, F.Location.of("SPRING", "TX", None), "unknown", holder("B1", "ACME TOOLS INC"))
    assert company["company_place_conflict"] == 1.0 and company["state_conflicts"] == company["city_conflicts"] == 0.0
    local = holder("N1", "ACME FOOD BANK", category="nonprofit", state="TX")
    body = place_values(payee, F.Location.of("SPRING", "TX", None), "unknown", local)
    assert body["company_place_conflict"] == 0.0 and body["state_conflicts"] == 1.0
    near = place_values(payee, F.Location.of("PHOENIX", "AZ", None), "unknown", holder("B1", "ACME TOOLS INC"))
    assert near["company_place_conflict"] == 0.0 and near["city_agrees"] == 1.0
    other_town = place_values(payee, F.Location.of("TUCSON", "AZ", None), "unknown", holder("B1", "ACME TOOLS INC"))
    assert other_town["company_place_conflict"] == 1.0 and other_town["state_agrees"] == 0.0
    # In its own town another ZIP is another office: town and state still agree.
    manhattan = F.QueryPlace.of(F.Location.of("NEW YORK", "NY", "10004"))
    other_zip = place_values(manhattan, F.Location.of("NEW YORK", "NY", "10001"), "unknown", holder("B1", "ACME INC"))
    assert other_zip["company_place_conflict"] == 1.0 and other_zip["state_agrees"] == other_zip["city_agrees"] == 1.0
    # ... also when the payee's name already says the town (no town evidence twice, the state kept).
    named = F.QueryPlace.for_payee(normalize_name("COLUMBUS ACME INC"), F.Location.of("COLUMBUS", "OH", "43215"))
    assert named.city_in_name
    in_name = place_values(named, F.Location.of("COLUMBUS", "OH", "43220"), "unknown", holder("B1", "ACME INC"))
    assert in_name["company_place_conflict"] == 1.0 and in_name["state_agrees"] == 1.0 and in_name["city_agrees"] == 0.0


def test_a_street_agrees_only_where_a_town_or_zip_could_have_disagreed():
    payee = F.QueryPlace.of(F.Location.of("COLUMBUS", "OH", None))
    company = holder("B1", "ACME TOOLS INC")
    for nowhere_in_particular in (F.Location.of(None, None, None), F.Location.of(None, "OH", None)):
        assert place_values(payee, nowhere_in_particular, "agree", company)["street_agrees"] == 0.0
        # ... and the same on the payee's side.
        columbus = F.Location.of("COLUMBUS", "OH", "43215")
        state_only = F.QueryPlace.of(nowhere_in_particular)
        assert place_values(state_only, columbus, "agree", company)["street_agrees"] == 0.0
    assert place_values(payee, F.Location.of("COLUMBUS", "OH", None), "agree", company)["street_agrees"] == 1.0
    assert place_values(payee, F.Location.of(None, "OH", "43215"), "agree", company)["street_agrees"] == 1.0
    # A registry row whose town line is not read keeps no street to agree or disagree with.
    unread = holder("OUI1", "QUORVANTIX INC", address="100 Park Drive, Suite 204 | Seattle 98144")
    index = index_of(unread, holder("B2", "ACME TOOLS"))
    assert index.entries["OUI1"].street is None and not index.entries["OUI1"].location
    result = index.match("QUORVANTIX INC", city="Columbus", state="OH", address_lines="100 Park Drive")
    assert "street_agrees" not in evidence_of(result) and "street_conflicts" not in evidence_of(result)
