"""Addresses on messy, real-style strings: parsed, normalised, compared; never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.address import (
    EMPTY_KEY,
    address_key,
    compare_addresses,
    parse_address,
    registered_place,
    street_agreement,
    street_key,
    supplier_address_key,
)
from domain.matching import SupplierIndex
from domain.pipeline import enrich
from domain.suppliers import Supplier
from domain.vocabulary import US_STATES, US_ZIP_AREA_STATES
from schemas.events import PayeeRecord


def test_street_with_suite_to_usps_forms():
    parsed = parse_address(["123 North Main Street Suite 100"], "Springfield", "Illinois", "62704-1234")
    assert parsed.status == "standardized" and parsed.kind == "street"
    assert (parsed.line1, parsed.line2) == ("123 N MAIN ST", "STE 100")
    assert (parsed.city, parsed.state, parsed.zip5, parsed.zip4) == ("SPRINGFIELD", "IL", "62704", "1234")
    assert parsed.one_line == "123 N MAIN ST STE 100, SPRINGFIELD, IL 62704-1234"
    assert parsed.missing == ()


def test_attention_and_care_of_lines_are_kept_apart():
    parsed = parse_address(["ATTN: Accounts Payable", "500 W. Madison St., Ste 1200"], "Chicago", "IL", "60661")
    assert parsed.attention == "ACCOUNTS PAYABLE"
    assert parsed.one_line == "500 W MADISON ST STE 1200, CHICAGO, IL 60661"
    inline = parse_address("C/O JANE DOE, 1 INFINITE LOOP", "Cupertino", "CA", "95014")
    assert inline.attention == "JANE DOE" and inline.line1 == "1 INFINITE LOOP"


@pytest.mark.parametrize("line", ["P.O. Box 4455", "PO BOX 4455", "Post Office Box 4455", "P O Box #4455", "POB 4455"])
def test_po_boxes(line):
    parsed = parse_address([line], "Dallas", "TX", "75201")
    assert parsed.kind == "po_box" and parsed.line1 == "PO BOX 4455"
    assert parsed.status == "standardized"


def test_po_box_with_the_place_in_the_same_line():
    parsed = parse_address("PO BOX 12, AUSTIN TX 78701")
    assert (parsed.line1, parsed.city, parsed.state, parsed.zip5) == ("PO BOX 12", "AUSTIN", "TX", "78701")


def test_a_street_named_box_is_no_po_box():
    assert parse_address(["12 Boxwood Lane"], "Reno", "NV", "89501").kind == "street"


def test_whole_address_in_one_line():
    parsed = parse_address(["123 Main St, Springfield, IL 62704"])
    assert parsed.status == "standardized"
    assert (parsed.line1, parsed.city, parsed.state, parsed.zip5) == ("123 MAIN ST", "SPRINGFIELD", "IL", "62704")


def test_missing_zip_is_partial_and_says_so():
    parsed = parse_address(["1 Infinite Loop"], "Cupertino", "CA", None)
    assert parsed.status == "partial" and parsed.missing == ("zip",)
    assert parse_address(["1600 Pennsylvania Ave NW"], "Washington", "DC", "2050").missing == ("zip",)
    assert parse_address([], "Phoenix", "AZ").missing == ("street", "zip")


@pytest.mark.parametrize(
    "lines, city, state, postal, country",
    [
        (["10 Downing Street"], "London", None, "SW1A 2AA", "United Kingdom"),
        (["205 Annagem Blvd."], "Mississauga", "Ontario", "L5T 2V1", None),
        (["3RD FL., NO. 260, PA TEH ROAD"], "TAIWAN", None, None, "TW"),
        (["KAWASAKI KANAGAWA 216-0033"], "JAPAN", None, None, "JP"),
    ],
)
def test_foreign_addresses_pass_through(lines, city, state, postal, country):
    parsed = parse_address(lines, city, state, postal, country)
    assert parsed.status == "foreign" and parsed.zip5 is None
    assert parsed.one_line and lines[0].upper().replace(".", "").split(",")[0] in parsed.one_line


def test_nothing_recognisable_is_unparsed_and_nothing_at_all_is_none():
    assert parse_address(["???"]).status == "unparsed"
    assert parse_address([]) is None and parse_address(None, None, None, None) is None


def test_usa_as_a_line_or_country_is_the_us():
    parsed = parse_address(["742 Evergreen Terrace", "USA"], "Springfield", "OR", "97477", "U.S.A.")
    assert parsed.status == "standardized" and parsed.country == "US"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(max_size=60), max_size=4),
    st.one_of(st.none(), st.text(max_size=30)),
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.text(max_size=12)),
    st.one_of(st.none(), st.text(max_size=20)),
)
def test_never_raises(lines, city, state, postal, country):
    parse_address(lines, city, state, postal, country)
    compare_addresses(address_key(lines, city, postal), address_key(lines[:1], state, country))


def test_keys_ignore_type_direction_unit_and_spelling():
    payee = address_key(["123 North Main Street, Suite 4"], "St. Louis", "63101-1234")
    supplier = supplier_address_key("123 N MAIN ST STE 400", "SAINT LOUIS", "63101")
    assert payee == supplier
    assert payee.street == "123 MAIN" and payee.zip5 == "63101" and payee.city == "SAINT LOUIS"
    assert supplier_address_key("100 N ST", "", "").street == "100 N ST"  # the type is the name
    assert supplier_address_key("PO BOX 75650", "WASHINGTON", "20013").street == "PO BOX 75650"
    assert supplier_address_key("", "", "00000") is EMPTY_KEY  # the supplier list's placeholder ZIP


def test_agreement_decides_between_namesakes():
    payee = address_key(["4330 Crittenden Drive"], "Louisville", "40209")
    here = supplier_address_key("4330 CRITTENDEN DR", "LOUISVILLE", "40209")
    across_town = supplier_address_key("14404 ASHFORD CT", "LOUISVILLE", "40245")
    elsewhere = supplier_address_key("1 GLENWOOD RD", "WATERFORD", "06385")
    same = compare_addresses(payee, here)
    assert (same.street, same.postal, same.city) == ("agree", "agree", "agree")
    across = compare_addresses(payee, across_town)
    assert (across.street, across.postal, across.city) == ("disagree", "near", "agree")
    far = compare_addresses(payee, elsewhere)
    assert (far.street, far.postal, far.city) == ("disagree", "disagree", "disagree")


def test_street_keys_as_the_index_stores_and_compares_them():
    assert street_key("828 FORT STREET MALL STE 100") == street_key(["828 Fort St Mall"]) == "828 FT ST MALL"
    assert street_key(["ATTN: AP", "500 W Madison St, Chicago IL 60661"]) == "500 MADISON"
    assert street_key(["Suite 400"]) is street_key("") is street_key(None) is None
    # A number alone (a ZIP on a line of its own) names no street.
    assert street_key(["Chicago IL", "60661"]) is street_key("100") is None
    assert street_key(["2nd Floor", "100 Main St"]) == street_key("3rd Fl, 100 Main Street") == "100 MAIN"
    assert street_agreement("PO BOX 12345", "PO BOX 12345") == "agree"
    # Box numbers one digit apart are other boxes, however alike they look.
    assert street_agreement("PO BOX 12345", "PO BOX 12346") == "disagree"
    assert street_agreement(street_key("4330 Crittenden Drv"), street_key("4330 CRITTENDEN DR")) == "agree"
    assert street_agreement("4330 CRITTENDEN", "4303 CRITTENDEN") == "disagree"


def test_unknown_when_a_side_lacks_the_part():
    payee = address_key([], "Louisville", None)
    supplier = supplier_address_key("PO BOX 43443", "LOUISVILLE", "40253")
    agreement = compare_addresses(payee, supplier)
    assert (agreement.street, agreement.postal, agreement.city) == ("unknown", "unknown", "agree")
    assert not compare_addresses(EMPTY_KEY, supplier).compared
    # A PO box and a street address can both be the supplier's: no evidence either way.
    street = address_key(["4330 Crittenden Dr"], None, None)
    assert compare_addresses(street, supplier).street == "unknown"


def test_the_result_carries_the_address_block():
    index = SupplierIndex(match_threshold=0.85, ambiguity_margin=0.05)
    record = PayeeRecord(
        source_system="ap", source_record_id="1", payee_name="ACME TOOLS INC",
        address_lines=["Attn: AP", "P.O. Box 12"], city="Austin", state="Texas", postal_code="78701",
    )
    enrichment = enrich(record, index)
    assert enrichment.address is not None
    assert enrichment.address.one_line == "PO BOX 12, AUSTIN, TX 78701"
    assert enrichment.address.attention == "AP"
    assert "address" in enrichment.timings_ms
    bare = PayeeRecord(source_system="ap", source_record_id="2", payee_name="ACME TOOLS INC")
    assert enrich(bare, index).address is None


def test_the_pipeline_matches_on_the_records_street():
    index = SupplierIndex()
    for supplier_id, address in (("N1", "4330 CRITTENDEN DR"), ("N2", "1200 BERRY BLVD")):
        index.upsert(Supplier(supplier_id=supplier_id, name="GRACE COMMUNITY CHURCH", address=address,
                              city="LOUISVILLE", state="KY", postal_code="40209", country="US", category="nonprofit"))
    fields = {"source_system": "ap", "payee_name": "Grace Community Church", "city": "Louisville", "state": "KY",
              "postal_code": "40209"}
    placed = enrich(PayeeRecord(source_record_id="1", address_lines=["1200 Berry Boulevard"], **fields), index)
    assert placed.match.decision == "matched" and placed.match.supplier_id == "N2"
    assert enrich(PayeeRecord(source_record_id="2", **fields), index).match.decision == "ambiguous"


@pytest.mark.parametrize(("address", "place"), [
    ("1 Infinite Loop | Cupertino CA 95014", ("1 Infinite Loop", "CUPERTINO", "CA", "95014")),
    ("45 Perseverance Way | Hyannis Massachusetts 02601", ("45 Perseverance Way", "HYANNIS", "MA", "02601")),
    ("INTERNATIONAL INC. | WOODDALE IL 60091-1073", ("INTERNATIONAL INC.", "WOODDALE", "IL", "60091")),
    ("One Microsoft Way | Redmond Wa. 98052", ("One Microsoft Way", "REDMOND", "WA", "98052")),
    ("N6660 Rolling Meadows Dr | FOND DU LAC WI 54935", ("N6660 Rolling Meadows Dr", "FOND DU LAC", "WI", "54935")),
    ("1 Kansas Ave | Kansas City Kansas 66101", ("1 Kansas Ave", "KANSAS CITY", "KS", "66101")),
    ("2 Main St | Port Washington NY 11050", ("2 Main St", "PORT WASHINGTON", "NY", "11050")),
    ("3 Main St | Logan Twp New Jersey 08085", ("3 Main St", "LOGAN TWP", "NJ", "08085")),
    ("4 Main St | Irvine, CA CA 92604", ("4 Main St", "IRVINE", "CA", "92604")),
    ("5 Main St | San Jose CA United States 95131", ("5 Main St", "SAN JOSE", "CA", "95131")),
    ("6 Main St | SUGAR LAND TEXAS 77478", ("6 Main St", "SUGAR LAND", "TX", "77478")),
    # The state's name is also the town's: the town stays.
    ("450 W 33rd St | New York NY 10001", ("450 W 33rd St", "NEW YORK", "NY", "10001")),
    # A state and its ZIP with no town; a ZIP+4 spaced out; the country after the ZIP.
    ("100 Park Dr | NC 27709", ("100 Park Dr", "", "NC", "27709")),
    ("1 Capitol St | West Virginia 25301", ("1 Capitol St", "", "WV", "25301")),
    ("7 Main St | Austin TX 78728 - 6610", ("7 Main St", "AUSTIN", "TX", "78728")),
    ("8 Main St | Miami FL 33101 USA", ("8 Main St", "MIAMI", "FL", "33101")),
    # ZIPs outside their national area: El Paso's, the federal government's.
    ("9 Main St | El Paso TX 88590", ("9 Main St", "EL PASO", "TX", "88590")),
    ("10 Main St | Washington DC 56915", ("10 Main St", "WASHINGTON", "DC", "56915")),
    ("11 Main St | Anchorage AK 99501", ("11 Main St", "ANCHORAGE", "AK", "99501")),
    # A code repeated is no town; a town in a bar of its own; a country word is no state's.
    ("12 Main St | CA CA 95014", ("12 Main St", "", "CA", "95014")),
    ("9115 Brown Deer Road | San Diego | CA 92121", ("9115 Brown Deer Road", "SAN DIEGO", "CA", "92121")),
    ("13 Main St | Lake America NY 10001", ("13 Main St", "LAKE AMERICA", "NY", "10001")),
    ("14 Main St | Austin TX 78728- 6610", ("14 Main St", "AUSTIN", "TX", "78728")),
])
def test_a_registry_rows_town_line_gives_its_place(address, place):
    supplier = Supplier(supplier_id="OUI1", name="X", address=address, country="US", category="business")
    found = registered_place(supplier)
    assert (found.address, found.city, found.state, found.postal_code) == place


@pytest.mark.parametrize("address", [
    # No US state in the line (and a ZIP alone may be a foreign postal code).
    "1200 12th Ave S | Seattle 98144",
    "5F No 1 | Sijhih City Taipei County 22102",
    # A town's word that is a state's name or a loose abbreviation of one, with a ZIP elsewhere
    # (or a typo in the registry): no state.
    "6020 S 190th ST | Kent 98032",
    "6020 S 190th ST | Kent 40202",
    "2 Main St | Port Washington 11050",
    "1 Page Mill Rd | Palo Alto IA 94301",
    # The areas' exceptions are prefixes, not whole areas.
    "1 Main St | Minneapolis DC 55401",
    "1 Main St | Dallas TX 85001",
])
def test_a_town_line_not_read_leaves_no_place_and_no_street(address):
    # Its street key would run into the town line (another street to every payee) or stop
    # short of it (the same street in any town).
    found = registered_place(Supplier(supplier_id="OUI1", name="X", address=address, country="US"))
    assert (found.address, found.city, found.state, found.postal_code) == ("", "", "", "")


@pytest.mark.parametrize("supplier", [
    # A foreign row whose province looks like a state code.
    Supplier(supplier_id="OUI8", name="X", address="Via Roma 1 | Milano MI 20100", country="IT"),
    Supplier(supplier_id="OUI9", name="X", address="Via Roma 1 | Trento TN 38122", country="IT"),
    Supplier(supplier_id="OUI2", name="X", address="Klingenbergstr 16 | Detmold 32758", country="DE"),
])
def test_a_foreign_row_is_placed_in_no_state(supplier):
    assert registered_place(supplier).state == ""


@pytest.mark.parametrize("supplier", [
    Supplier(supplier_id="N1", name="X", address="1 MAIN ST | ROOM 2", city="BOSTON", state="MA", country="US"),
    Supplier(supplier_id="N2", name="X", address="1 MAIN ST", country="US"),
])
def test_a_row_with_no_town_line_keeps_its_fields(supplier):
    found = registered_place(supplier)
    assert (found.address, found.city, found.state, found.postal_code) == (
        supplier.address, supplier.city, supplier.state, supplier.postal_code)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_town_line_gives_a_place_or_none(line):
    found = registered_place(Supplier(supplier_id="OUI1", name="X", address=f"1 MAIN ST | {line}", country="US"))
    if found.state:  # a state its ZIP is in, and the street before the bar
        assert found.state in US_STATES and found.address == "1 MAIN ST"
        assert not found.postal_code or found.state in US_ZIP_AREA_STATES[found.postal_code[0]]
    else:
        assert (found.address, found.city, found.postal_code) == ("", "", "")
