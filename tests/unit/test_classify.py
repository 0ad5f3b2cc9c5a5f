"""Rule layer: each rule family, supplier categories, SIC validity, speed and determinism."""

from __future__ import annotations


import pytest

from domain.classify import (
    RULES_VERSION,
    Classification,
    classify_payee,
    is_valid_sic,
    lexicon,
    sic_description,
)
from domain.classify.sic import all_sic_codes
from domain.classify.supplier import _GOVERNMENT_TYPES, _NTEE_TO_SIC, ntee_to_sic


def entity(name: str) -> str:
    return classify_payee(name).entity_type


@pytest.mark.parametrize(
    "name",
    [
        "Acme Widgets LLC",
        "JOHNSON CONTROLS INC",
        "Novus Security Sp. z o.o.",
        "Meteocontrol GmbH",
        "Aplicom Oy",
        "walmart stores inc.",
        "M L De Pirro Co.",
        "Smith & Sons Plumbing",
    ],
)
def test_legal_forms_and_business_words_make_a_business(name: str) -> None:
    assert entity(name) == "business"


@pytest.mark.parametrize(
    "name, subtype, sic",
    [
        ("First Baptist Church of Tulsa", "nonprofit", "8661"),
        ("American Legion Auxiliary Post 12", "nonprofit", "8641"),
        ("Navy Federal Credit Union", "financial_institution", "6061"),
        ("State Farm Mutual Insurance Company", "insurance", "6331"),
        ("Pacific Gas and Electric", "utility", "4924"),
        ("Fremont Water Works Company Inc", "utility", "4941"),
        ("Tony's Pizzeria", None, "5812"),
    ],
)
def test_business_subtype_and_sic(name: str, subtype: str | None, sic: str) -> None:
    result = classify_payee(name)
    assert (result.entity_type, result.subtype, result.sic_code) == ("business", subtype, sic)
    assert result.sic_description == sic_description(sic)


@pytest.mark.parametrize(
    "name, subtype",
    [
        ("CITY OF CANBY", "local_government"),
        ("Town of Colrain", "local_government"),
        ("Walla Walla County", "local_government"),
        ("STATE OF MISSOURI", "state_government"),
        ("Internal Revenue Service", "tax_authority"),
        ("IRS", "tax_authority"),
        ("Missouri Department of Revenue", "tax_authority"),
        ("Cook County Treasurer", "tax_authority"),
        ("Sands Consolidated Independent School District", "school_district"),
        ("Smithfield Police Department", None),
        ("Pechanga Tribal Government", None),
    ],
)
def test_government_patterns(name: str, subtype: str | None) -> None:
    result = classify_payee(name)
    assert result.entity_type == "government"
    if subtype is not None:
        assert result.subtype == subtype


@pytest.mark.parametrize(
    "name", ["CITY OFF SEARCY", "Town O Sturgeon Bay", "REDDINGG TOWNSHIP", "CITTY OF FULTONDALE"]
)
def test_government_patterns_survive_keying_slips(name: str) -> None:
    assert entity(name) == "government"


@pytest.mark.parametrize(
    "name",
    [
        "Brown County Genealogical Society",
        "Tri-City Sluggers",
        "United States Tennis Association",
        "American Federation of State County and Municipal Employees",
        "Veterans of Foreign Wars Department of Ohio",
    ],
)
def test_place_names_inside_organisation_names_do_not_make_government(name: str) -> None:
    assert entity(name) == "business"


@pytest.mark.parametrize(
    "name",
    [
        "John Smith",
        "SMITH, JOHN A",
        "TALBOT TERESE W",
        "H GARTLAND",
        "Dr. Mary O'Brien",
        "Jean Van der Sommen",
        "Stanley Jones, Jr.",
        "John and Mary Smith",
        "Chandresh Viradia M.D.",
        "Judith A de Vriendt Attorney at Law",
    ],
)
def test_person_name_structure_makes_an_individual(name: str) -> None:
    result = classify_payee(name)
    assert result.entity_type == "individual"
    assert result.sic_code is None


def test_reasons_do_not_repeat_personal_names() -> None:
    assert "GARTLAND" not in classify_payee("Harold Gartland").reason.upper()


@pytest.mark.parametrize("name", ["Fleming & Ulkus", "The Drake", "Gabe's Place"])
def test_firm_and_trade_name_shapes_make_a_business(name: str) -> None:
    assert entity(name) == "business"


def test_doing_business_as_is_a_sole_proprietorship() -> None:
    result = classify_payee("John Smith DBA Smith Plumbing")
    assert (result.entity_type, result.subtype, result.sic_code) == (
        "business",
        "sole_proprietorship",
        "1711",
    )


def test_care_of_party_is_ignored() -> None:
    assert entity("Jane Roe c/o Acme Property Management LLC") == "individual"


def test_learned_word_statistics_decide_names_without_keywords() -> None:
    result = classify_payee("Nokia Siemens")
    assert (result.entity_type, result.method) == ("business", "model")


def test_empty_or_symbol_only_names_are_unknown() -> None:
    for name in ("", "   ", "***"):
        result = classify_payee(name)
        assert result.entity_type == "unknown" and result.confidence == 0.0


@pytest.mark.parametrize(
    "category, code, entity_type, subtype, sic",
    [
        ("government", "City", "government", "local_government", None),
        ("government", "School district", "government", "school_district", "8211"),
        ("government", "County - Election", "government", "election_office", None),
        ("nonprofit", "X20", "business", "nonprofit", "8661"),
        ("nonprofit", "W30", "business", "nonprofit", "8641"),
        ("nonprofit", "C30", "business", "nonprofit", None),
        ("business", "", "business", None, None),
    ],
)
def test_supplier_category_decides(
    category: str, code: str, entity_type: str, subtype: str | None, sic: str | None
) -> None:
    result = classify_payee("Some Supplier Name", supplier_category=category, supplier_code=code)
    assert (result.entity_type, result.subtype, result.sic_code, result.method) == (
        entity_type,
        subtype,
        sic,
        "supplier",
    )


def test_nonprofit_supplier_keeps_sic_from_name_when_ntee_has_none() -> None:
    result = classify_payee("Grace Lutheran Church", supplier_category="nonprofit", supplier_code="Z99")
    assert (result.subtype, result.sic_code) == ("nonprofit", "8661")


def test_sic_list_is_the_official_4_digit_list() -> None:
    codes = all_sic_codes()
    assert len(codes) == 1005
    assert all(len(code) == 4 and code.isdigit() for code in codes)
    assert sic_description("7372") == "PREPACKAGED SOFTWARE"
    assert is_valid_sic("0111") and not is_valid_sic("111") and not is_valid_sic("7370")
    assert not is_valid_sic(7372)


def test_every_sic_code_the_classifier_can_emit_is_valid() -> None:
    emitted = {evidence.sic_code for evidence in lexicon.WORDS.values()}
    emitted |= {evidence.sic_code for evidence in lexicon.PHRASES.values()}
    emitted |= {evidence.sic_code for evidence in lexicon.AGENCY_ACRONYMS.values()}
    emitted |= set(lexicon.BRANDS.values())
    emitted |= {sic for _, sic in _NTEE_TO_SIC}
    emitted |= {sic for _, sic in _GOVERNMENT_TYPES.values()}
    emitted |= {"8111", ntee_to_sic("B20")}  # firm-name evidence; a mapped NTEE code
    emitted.discard(None)
    invalid = sorted(code for code in emitted if not is_valid_sic(code))
    assert invalid == []


def test_results_are_well_formed_and_deterministic() -> None:
    names = ["ACME CORP", "John Smith", "City of Troy", "ICONAG", "Liqing Zhang", "x", "12345"]
    first = [classify_payee(name) for name in names]
    assert first == [classify_payee(name) for name in names]
    for result in first:
        assert isinstance(result, Classification)
        assert 0.0 <= result.confidence <= 1.0
        assert result.method in {"rules", "model", "supplier"}
        assert result.sic_code is None or is_valid_sic(result.sic_code)
        assert result.reason
    assert RULES_VERSION
