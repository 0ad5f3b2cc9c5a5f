"""Supplier records, the supplier index and the matcher, on a small real slice of the supplier list."""

from __future__ import annotations

import gzip
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from domain.matching import snapshot
from domain.matching import FEATURES, Location, MatchResult, QueryPlace, SupplierIndex
from domain.matching import index as index_module
from domain.matching.index import MAX_SCORED_NAMES, _block, _closest_in_length, _nearest_in_length, _Union
from domain.normalize import normalize_name
from domain.suppliers import RowError, Supplier, read_suppliers_csv, supplier_from_dict, supplier_to_dict

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "suppliers_sample.csv"
BUNDLED = Path(__file__).resolve().parents[2] / "domain" / "data" / "sample_suppliers.csv.gz"

LEGION_HOMER = "EIN237026064"
LEGION_ANCHORAGE_PIONEER_HOME = "EIN900355913"  # the only Anchorage post in 99501
JUNIPER = "OUIE4F27C"
HPE_FOUNDATION = "EIN475011215"
UNITED_WAY_ANCHORAGE = "EIN920027948"


def fixture_suppliers() -> list[Supplier]:
    rows = list(read_suppliers_csv(FIXTURE))
    assert not [row for row in rows if isinstance(row, RowError)]
    return rows  # type: ignore[return-value]


@pytest.fixture(scope="module")
def index() -> SupplierIndex:
    built = SupplierIndex()
    for supplier in fixture_suppliers():
        built.upsert(supplier)
    return built


def supplier(supplier_id: str, name: str, city: str = "", state: str = "", alt_name: str = "") -> Supplier:
    return Supplier(supplier_id=supplier_id, name=name, alt_name=alt_name, city=city, state=state,
                    country="US", category="business")


def assert_matched(result: MatchResult, supplier_id: str) -> None:
    assert result.decision == "matched", result
    assert result.supplier_id == supplier_id
    assert 0.0 <= result.score <= 1.0


# ---------------------------------------------------------------------------- suppliers


def test_reads_csv_and_gzip(tmp_path):
    plain = fixture_suppliers()
    packed = tmp_path / "suppliers.csv.gz"
    packed.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    assert list(read_suppliers_csv(packed)) == plain
    assert plain[0].name == "AMERICAN LEGION"


def test_bad_rows_come_back_as_errors_with_their_line(tmp_path):
    path = tmp_path / "suppliers.csv"
    path.write_text(
        "supplier_id,name,city,state\n"
        "S1,ACME TOOLS,AUSTIN,TX\n"
        ",NO ID,AUSTIN,TX\n"
        "S3,,AUSTIN,TX\n"
        "S4,TOO,MANY,FIELDS,HERE\n"
        "S5,LAST ONE,,\n"
    )
    rows = list(read_suppliers_csv(path))
    kinds = [type(row).__name__ for row in rows]
    assert kinds == ["Supplier", "RowError", "RowError", "RowError", "Supplier"]
    assert rows[1] == RowError(3, "missing supplier_id")
    assert rows[2] == RowError(4, "missing name")
    assert rows[3].line == 5


def test_a_file_without_the_required_columns_is_one_error(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("id,title\n1,x\n")
    assert list(read_suppliers_csv(path)) == [RowError(1, "header lacks supplier_id, name")]


def test_supplier_event_round_trip_and_validation():
    original = fixture_suppliers()[0]
    assert supplier_from_dict(supplier_to_dict(original)) == original
    assert supplier_from_dict({"supplier_id": "S1", "name": "ACME", "city": None}).city == ""
    with pytest.raises(ValueError):
        supplier_from_dict({"supplier_id": "S1", "name": " "})
    with pytest.raises(TypeError):
        supplier_from_dict({"supplier_id": "S1", "name": ["ACME"]})


def test_bundled_sample_holds_the_fixture_and_stays_small():
    bundled = {row.supplier_id for row in read_suppliers_csv(BUNDLED) if isinstance(row, Supplier)}
    assert {row.supplier_id for row in fixture_suppliers()} <= bundled
    assert 4_000 <= len(bundled) and BUNDLED.stat().st_size < 400_000


# ---------------------------------------------------------------------------- matching


def test_exact_normalised_name(index):
    result = index.match("JUNIPER NETWORKS, INC.")
    assert_matched(result, JUNIPER)
    assert result.match_type == "exact"
    assert result.supplier_category == "business"
    assert result.score >= index.match_threshold


def test_misspelt_name_is_a_fuzzy_match(index):
    result = index.match("Untied Way of Anchorge", city="Anchorage", state="AK")
    assert_matched(result, UNITED_WAY_ANCHORAGE)
    assert result.match_type == "fuzzy"


def test_a_misspelling_without_location_finds_the_supplier(index):
    # The open-world fit gives an exact unplaced name no more weight than a one-slip variant:
    # exact names are where the world's namesakes collide. Both must find the supplier.
    assert_matched(index.match("Juniper Networks"), JUNIPER)
    assert_matched(index.match("Junpier Networks"), JUNIPER)
    assert index.match("Junpier Networks").match_type == "fuzzy"


def test_truncated_name_matches_by_prefix(index):
    # A payment system kept the first 35 characters.
    result = index.match("HEWLETT PACKARD ENTERPRISE FOUNDATION"[:35], city="Washington", state="DC")
    assert_matched(result, HPE_FOUNDATION)


def test_dba_alias_finds_the_supplier(index):
    assert_matched(index.match("Gadget Holdings LLC DBA Juniper Networks"), JUNIPER)


def test_city_and_state_decide_between_namesakes(index):
    assert_matched(index.match("American Legion", city="Homer", state="AK"), LEGION_HOMER)
    assert_matched(index.match("AMERICAN LEGION", city="HOMER", state="Alaska"), LEGION_HOMER)


def test_postal_code_picks_out_one_of_the_namesakes_in_one_city(index):
    result = index.match("AMERICAN LEGION", city="Anchorage", state="AK", postal_code="99501-2200")
    # The only post in that ZIP leads; whether it clears the threshold is the open-world fit's call.
    assert result.decision in ("matched", "ambiguous")
    assert result.supplier_id == LEGION_ANCHORAGE_PIONEER_HOME
    assert result.candidates[0].probability > 2 * result.candidates[1].probability


@pytest.mark.parametrize(
    "location",
    [{}, {"state": "AK"}, {"city": "Anchorage", "state": "AK"}],
)
def test_namesakes_the_location_cannot_separate_are_ambiguous(index, location):
    result = index.match("AMERICAN LEGION", **location)
    assert result.decision == "ambiguous", result
    assert result.runner_up is not None
    assert index.get(result.supplier_id).name == "AMERICAN LEGION"
    assert result.score < index.match_threshold


def test_a_namesake_in_another_state_is_not_a_match(index):
    assert index.match("American Legion", city="Houston", state="TX").decision != "matched"


@pytest.mark.parametrize(
    "name",
    ["Zyxwv Quantum Bakery LLC", "JOHN SMITH", "Anchorage Plumbing & Heating", "", "INC", "C/O"],
)
def test_payees_not_in_the_index_are_not_matched(index, name):
    result = index.match(name, state="AK")
    assert result.decision == "none"
    assert result.supplier_id is None and result.match_type == "none"


def test_person_name_order_does_not_matter():
    people = SupplierIndex()
    people.upsert(supplier("P1", "JOHN Q PUBLIC", "AUSTIN", "TX"))
    assert_matched(people.match("Public, John Q", state="TX"), "P1")


def test_a_payee_naming_both_names_of_a_chapter_finds_that_chapter():
    # Chapters share the parent's name; the payee wrote "<chapter> DBA <parent>".
    chapters = SupplierIndex()
    chapter_names = ["DEEP SPRINGS ELEM PTA", "BUTLER HIGH PTSA", "CARTER ELEM PTA", "LAKE RIDGE PTA"]
    for number, chapter in enumerate(chapter_names):
        chapters.upsert(supplier(f"C{number}", "PTA KENTUCKY CONGRESS", "LEXINGTON", "KY", alt_name=chapter))
    assert chapters.match("PTA Kentucky Congress", "Lexington", "KY").decision == "ambiguous"
    both = chapters.match("Carter Elem PTA DBA PTA Kentucky Congress", "Lexington", "KY")
    assert both.supplier_id == "C2" and both.decision in ("matched", "ambiguous")
    assert both.candidates[0].probability > 3 * both.candidates[1].probability


def test_a_cut_name_finds_its_supplier_among_short_names_sharing_its_words():
    crowded = SupplierIndex()
    full_name = "WOMEN LAWYERS ASSOCIATION OF JEFFERSON COUNTY KY INC"
    crowded.upsert(supplier("TRUTH", full_name, "LOUISVILLE", "KY"))
    short_names = [
        "WOMEN LAWYERS", "LAWYERS ASSOCIATION", "WOMEN OF JEFFERSON", "ASSOCIATION OF WOMEN",
        "JEFFERSON LAWYERS", "WOMEN ASSOCIATION", "LAWYERS OF JEFFERSON", "WOMEN LAWYERS OF KY",
        "JEFFERSON WOMEN", "LAWYERS WOMEN ASSOCIATION",
    ]
    for number, name in enumerate(short_names):
        crowded.upsert(supplier(f"S{number}", name, "LEXINGTON", "KY"))
    # The payment system kept 35 characters.
    assert_matched(crowded.match(full_name[:35], "Louisville", "KY"), "TRUTH")


def test_an_exact_name_beats_a_namesake_one_letter_away():
    neighbours = SupplierIndex()
    neighbours.upsert(supplier("NAINA", "NAINA FOUNDATION", "FAIRFIELD", "CT"))
    neighbours.upsert(supplier("NINA", "NINA FOUNDATION", "FAIRFIELD", "CT"))
    assert_matched(neighbours.match("Naina Foundation", state="CT"), "NAINA")
    assert_matched(neighbours.match("Nina Foundation", state="CT"), "NINA")


def test_a_supplier_using_the_name_as_its_alt_name_is_no_namesake():
    university = SupplierIndex()
    university.upsert(supplier("U", "FRIENDS UNIVERSITY", "WICHITA", "KS"))
    university.upsert(
        supplier("F", "FRIENDS UNIVERSITY FOUNDATION", "WICHITA", "KS", alt_name="FRIENDS UNIVERSITY")
    )
    one_holder = SupplierIndex()
    one_holder.upsert(supplier("U", "FRIENDS UNIVERSITY", "WICHITA", "KS"))
    with_alt = university.candidates(normalize_name("Friends University"), QueryPlace.of(Location.of(None, None, None)))
    alone = one_holder.candidates(normalize_name("Friends University"), QueryPlace.of(Location.of(None, None, None)))
    assert with_alt[0].supplier_id == "U"
    assert with_alt[0].features == alone[0].features  # the alt-name holder adds no namesake term


def test_candidates_are_a_small_blocked_set(index):
    # A misspelt rare token plus a common one: only names sharing tokens are ever scored.
    candidates = index.candidates(normalize_name("Junpier Networks"), QueryPlace.of(Location.of(None, None, None)))
    assert 0 < len(candidates) < 10


# ---------------------------------------------------------------------------- maintenance


def test_upsert_replaces_and_delete_removes():
    index = SupplierIndex()
    index.upsert(supplier("S1", "ACME TOOLS INC", "AUSTIN", "TX"))
    assert_matched(index.match("Acme Tools", "Austin", "TX"), "S1")
    index.upsert(supplier("S1", "ROADRUNNER SUPPLY CO", "AUSTIN", "TX"))
    assert len(index) == 1
    assert index.match("Acme Tools", "Austin", "TX").decision == "none"
    assert_matched(index.match("Roadrunner Supply", "Austin", "TX"), "S1")
    assert index.delete("S1") is True
    assert index.delete("S1") is False
    assert len(index) == 0 and index.get("S1") is None
    assert index.match("Roadrunner Supply").decision == "none"


def test_index_version_follows_content_not_history():
    suppliers = fixture_suppliers()
    forward, backward = SupplierIndex(), SupplierIndex()
    empty_version = forward.index_version
    for row in suppliers:
        forward.upsert(row)
    for row in reversed(suppliers):
        backward.upsert(row)
    assert forward.index_version == backward.index_version != empty_version

    before = forward.index_version
    renamed = Supplier(**{**supplier_to_dict(suppliers[0]), "name": "SOMETHING ELSE"})
    forward.upsert(renamed)
    assert forward.index_version != before
    forward.upsert(suppliers[0])
    assert forward.index_version == before
    forward.upsert(suppliers[0])  # same content again: no change
    assert forward.index_version == before
    forward.delete(suppliers[0].supplier_id)
    assert forward.index_version != before
    forward.upsert(suppliers[0])
    assert forward.index_version == before


def test_structures_return_to_empty_after_deleting_everything(index):
    suppliers = fixture_suppliers()
    scratch = SupplierIndex()
    for row in suppliers:
        scratch.upsert(row)
    for row in random.Random(3).sample(suppliers, len(suppliers)):
        scratch.delete(row.supplier_id)
    assert len(scratch) == 0
    assert scratch.index_version == SupplierIndex().index_version
    assert scratch.match("American Legion").decision == "none"
    assert not scratch.postings and not scratch.deletion_index and not scratch.name_suppliers


def test_snapshot_round_trip(index, tmp_path):
    path = tmp_path / "index.bin"
    snapshot.save(index, path)
    loaded = snapshot.load(path)
    assert len(loaded) == len(index)
    assert loaded.index_version == index.index_version
    for query in [("Junpier Networks",), ("AMERICAN LEGION", "Homer", "AK"), ("AMERICAN LEGION",)]:
        assert loaded.match(*query) == index.match(*query)
    assert loaded.entries == index.entries  # street keys included
    on_a_street = {"city": "Anchorage", "state": "AK", "address_lines": ["923 West 11th Avenue"]}
    assert loaded.match("AMERICAN LEGION", **on_a_street) == index.match("AMERICAN LEGION", **on_a_street)
    loaded.upsert(supplier("NEW1", "BRAND NEW THING"))
    assert_matched(loaded.match("Brand New Thing"), "NEW1")


def test_a_restored_snapshot_keeps_the_configured_thresholds(index, tmp_path):
    path = tmp_path / "index.bin"
    snapshot.save(index, path)
    restored = snapshot.restore(SupplierIndex(match_threshold=0.97, ambiguity_margin=0.2), path)
    assert (restored.match_threshold, restored.ambiguity_margin) == (0.97, 0.2)
    assert restored.index_version == index.index_version
    with pytest.raises(ValueError, match="empty"):
        snapshot.restore(restored, path)


def test_a_snapshot_of_other_normalisation_code_is_refused(index, tmp_path, monkeypatch):
    path = tmp_path / "index.bin"
    with monkeypatch.context() as patched:
        patched.setattr(snapshot, "_DERIVATION_DIGEST", "written-by-an-older-release")
        snapshot.save(index, path)
    with pytest.raises(ValueError, match="normalisation"):
        snapshot.load(path)


def test_the_only_namesake_in_the_payees_state_is_matched_by_the_state():
    index = SupplierIndex()
    for background in fixture_suppliers():  # a realistic vocabulary: how telling each word is
        index.upsert(background)
    for number, state in enumerate(("KS", "NE", "DE", "OK", "MT")):
        index.upsert(supplier(f"S{number}", "PATTERSON FAMILY FOUNDATION", city="SPRINGFIELD", state=state))
    assert_matched(index.match("Patterson Family Foundation", state="MT"), "S4")
    assert index.match("Patterson Family Foundation").decision == "ambiguous"


def test_a_rare_indexed_token_may_be_a_misspelling_of_a_common_one():
    index = SupplierIndex()
    index.upsert(supplier("A", "ALICE FOUNDATION", city="EAGLE", state="ID"))
    index.upsert(supplier("B", "ALLICE HOLDINGS"))  # the misspelling also names another supplier
    for number in range(40):
        index.upsert(supplier(f"X{number}", f"ALICE TOOLS {number}"))
    result = index.match("allice foundation")
    assert "A" in {result.supplier_id, result.runner_up and result.runner_up[0]}
    assert "ALLICE" not in result.reason.upper()


@pytest.mark.parametrize(
    "payee",
    [
        "Junpier Networks Inc",  # two letters swapped
        "Juniperr Networks",  # a doubled letter
        "Juniper NetworksInc",  # a legal form glued on
        "Juniper Networks Cmopany",  # a slipped legal form
    ],
)
def test_keyboard_slips_are_near_exact_and_score_above_a_plain_fuzzy_match(index, payee):
    top = index.candidates(normalize_name(payee), QueryPlace.of(Location.of(None, None, None)))[0]
    assert top.supplier_id == JUNIPER
    assert top.features[FEATURES.index("near_exact")] == 1.0
    assert index.match(payee).score > index.match("Junpier Sytsems").score


def test_names_that_differ_in_a_number_are_not_near_exact():
    index = SupplierIndex()
    index.upsert(supplier("P31", "P31 IMPACT MINISTRIES", state="MS"))
    top = index.candidates(normalize_name("P331 Impact Ministries"), QueryPlace.of(Location.of(None, "MS", None)))[0]
    assert top.features[FEATURES.index("near_exact")] == 0.0
    assert index.match("P331 Impact Ministries", state="MS").score < index.match(
        "P31 Impakt Ministries", state="MS"
    ).score


# ---------------------------------------------------------------------------- many namesakes


def _post(number: int, state: str, city: str, address: str = "") -> Supplier:
    return Supplier(supplier_id=f"P{number:03d}", name="AMERICAN LEGION", address=address or f"{number} MAIN ST",
                    city=city, state=state, country="US", category="nonprofit")


def test_namesakes_weighed_in_groups_decide_as_every_supplier_one_by_one():
    """Posts of one name share feature vectors and are weighed a group at a time; the decision
    must be what weighing each supplier alone gives (softmax with "none" at utility 0)."""
    posts = [_post(n, state, city) for n, (state, city) in enumerate(
        [("AK", "HOMER"), ("AK", "KENAI"), ("MT", "HELENA"), ("MT", "BUTTE"), ("ID", "BOISE")] * 8)]
    posts += [_post(900, "AK", "NOME", "1 FRONT ST"), _post(901, "AK", "NOME", "1 FRONT ST")]  # registered twice
    posts.append(supplier("A1", "LEGION HALL", "NOME", "AK", alt_name="AMERICAN LEGION"))
    index = SupplierIndex()
    for post in posts:
        index.upsert(post)
    for city, state in ((None, "AK"), ("NOME", "AK"), ("HELENA", None), (None, None)):
        result = index.match("American Legion", city=city, state=state)
        place = QueryPlace.for_payee(normalize_name("American Legion"), Location.of(city, state, None))
        ranked = index.candidates(normalize_name("American Legion"), place)
        assert len(ranked) == len(posts)
        assert [c.utility for c in ranked] == sorted((c.utility for c in ranked), reverse=True)
        shift = max(ranked[0].utility, 0.0)
        total = math.exp(-shift) + math.fsum(math.exp(c.utility - shift) for c in ranked)
        probability = {c.supplier_id: math.exp(c.utility - shift) / total for c in ranked}
        listed = [(c.supplier_id, round(probability[c.supplier_id], 4)) for c in ranked[:5]]
        assert [(view.supplier_id, view.probability) for view in result.candidates] == listed
        copies = {"P900", "P901"} if ranked[0].supplier_id in ("P900", "P901") else {ranked[0].supplier_id}
        assert result.score == pytest.approx(math.fsum(probability[i] for i in copies), abs=1e-12)
        if result.decision == "ambiguous" and "share this name" in result.reason:
            holders = sum(c.name_key == ranked[0].name_key for c in ranked)
            assert result.reason.startswith(f"{holders} suppliers share this name")


def test_a_name_of_many_holders_gathered_once_decides_as_holder_by_holder(monkeypatch):
    """A chapter name's holders are gathered by place once (``MANY_HOLDERS``): every payee place
    must get the result the holder-by-holder weighing gives, also after the holders change."""
    places = [("AK", "HOMER", "99603"), ("AK", "HAINES", ""), ("AK", "", ""), ("MT", "HELENA", "59601"),
              ("MT", "HAVRE", "59501"), ("ID", "BOISE", ""), ("", "", ""), ("AK", "NOME", "99762")]
    index = SupplierIndex()
    for number in range(index_module.MANY_HOLDERS + 16):
        state, city, postal = places[number % len(places)]
        index.upsert(replace(_post(number, state, city), postal_code=postal))
    index.upsert(supplier("A1", "LEGION HALL", "NOME", "AK", alt_name="AMERICAN LEGION"))
    payees = [("American Legion", city, state, postal) for city, state, postal in (
        (None, None, None), (None, "AK", None), ("HOMER", None, None), ("HOMER", "AK", None),
        ("HAVEN", "MT", None),
        ("HELENA", "MT", "59601"), (None, None, "99762"), ("NOME", "AK", None), ("BOISE", "AK", None))]
    payees.append(("Amerian Legion", "HAINES", "AK", None))

    def results() -> list[MatchResult]:
        return [index.match(name, city=city, state=state, postal_code=postal)
                for name, city, state, postal in payees]

    def holder_by_holder() -> list[MatchResult]:
        with monkeypatch.context() as patched:
            patched.setattr(index_module, "MANY_HOLDERS", len(index) + 1)
            return results()

    assert results() == holder_by_holder()
    for change in (
        lambda: index.upsert(replace(_post(999, "MT", "HAVEN"), postal_code="59501")),  # a post opens
        lambda: index.upsert(replace(_post(0, "AK", "NOME"), postal_code="99762")),  # one moves
        lambda: index.delete("P001"),  # one closes
    ):
        change()
        assert results() == holder_by_holder()


def test_a_common_token_alone_finds_names_added_and_loses_names_removed_since_it_was_last_asked():
    """Postings of a common token are kept sorted by length once a query needs them: a change
    to the token's names must reach the next query."""
    index = SupplierIndex()
    for number in range(MAX_SCORED_NAMES + 100):
        index.upsert(supplier(f"F{number}", f"{number:05d} MEMORIAL PARK FOUNDATION", "HOMER", "AK"))
    before = index.match("ZQ FOUNDATION", state="AK")  # ZQ is in no name: FOUNDATION alone blocks
    assert "NEW" not in {view.supplier_id for view in before.candidates}
    index.upsert(supplier("NEW", "ZR FOUNDATION", "HOMER", "AK"))
    after = index.match("ZQ FOUNDATION", state="AK")
    assert after.candidates[0].supplier_id == "NEW"
    index.delete("NEW")
    assert index.match("ZQ FOUNDATION", state="AK") == before


def test_names_nearest_in_length_are_the_same_from_sorted_postings():
    rng = random.Random(5)
    names = {"".join(rng.choice("ABC ") for _ in range(rng.randint(3, 30))).strip() or "A" for _ in range(3000)}
    by_length = sorted(names, key=lambda name: (len(name), name))
    for length in (1, 5, 14, 29, 40):
        for count in (1, 10, 500, 2999, 5000):
            assert _nearest_in_length(by_length, length, count) == _closest_in_length(names, length, count)


def test_a_misspelt_tokens_spellings_block_as_the_union_of_their_names():
    rng = random.Random(7)
    pool = [f"NAME {number}" for number in range(6000)]
    for _ in range(40):
        sizes = [rng.choice((50, 300, 1200, 2500, 4000)) for _ in range(rng.randint(1, 4))]
        anchors = [set(rng.sample(pool, size)) for size in sizes]
        spellings = [set(rng.sample(pool, rng.choice((20, 400, 3000)))) for _ in range(rng.randint(2, 3))]
        position = rng.randrange(len(anchors) + 1)
        lazy = sorted([*anchors[:position], _Union(spellings), *anchors[position:]], key=len)
        copied = sorted([*anchors[:position], set().union(*spellings), *anchors[position:]], key=len)
        assert set(_block(lazy, "NAME 12")) == _block(copied, "NAME 12")
