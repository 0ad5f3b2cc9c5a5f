"""Classification from a matched supplier's own category and code (IRS NTEE code or .gov org type)."""

from __future__ import annotations

from .lexicon import NONPROFIT, SCHOOL_DISTRICT
from .result import Classification
from .sic import is_valid_sic, sic_description

_SUPPLIER_CONFIDENCE = 0.97

# NTEE codes whose SIC industry is unambiguous, most specific prefix first (NTEE major group letter +
# digits). Groups left out (environment, civil rights, international affairs ...) have no clear SIC.
_NTEE_TO_SIC: tuple[tuple[str, str], ...] = (
    ("A5", "8412"),  # museums
    ("A6", "7922"),  # performing arts
    ("B21", "8351"),  # kindergartens, preschools
    ("B2", "8211"),  # elementary and secondary schools
    ("B41", "8222"),  # two-year colleges
    ("B4", "8221"),  # higher education
    ("B70", "8231"),  # libraries
    ("B", "8299"),  # other educational services
    ("D50", "8422"),  # zoos, aquariums
    ("E2", "8062"),  # hospitals
    ("E91", "8051"),  # nursing facilities
    ("E92", "8082"),  # home health care
    ("E3", "8093"),  # ambulatory and primary health care
    ("E", "8099"),  # other health care
    ("F", "8093"),  # mental health treatment
    ("H", "8733"),  # medical research
    ("J2", "8331"),  # job training, employment
    ("J40", "8631"),  # labor unions
    ("K31", "8322"),  # food banks, pantries
    ("N20", "7032"),  # recreational camps
    ("N5", "7997"),  # physical fitness, community recreation
    ("N6", "7997"),  # amateur sports clubs
    ("O", "8641"),  # youth development (scouting, youth clubs)
    ("P33", "8351"),  # child day care
    ("P7", "8361"),  # residential care
    ("P", "8322"),  # human services
    ("S41", "8611"),  # chambers of commerce, business leagues
    ("T2", "6732"),  # private grantmaking foundations
    ("T3", "6732"),  # public foundations
    ("T70", "8399"),  # federated giving
    ("U", "8733"),  # science and technology research institutes
    ("V", "8733"),  # social science research institutes
    ("W30", "8641"),  # military and veterans organisations
    ("X", "8661"),  # religion
    ("Y4", "8641"),  # fraternal societies
    ("Y50", "6553"),  # cemeteries
)

# .gov registry organisation types -> (subtype, SIC where the whole type has one industry).
_GOVERNMENT_TYPES: dict[str, tuple[str, str | None]] = {
    "city": ("local_government", None),
    "county": ("local_government", None),
    "special district": ("special_district", None),
    "state or territory": ("state_government", None),
    "federal": ("federal_government", None),
    "federal - executive": ("federal_government", "9111"),
    "federal - legislative": ("federal_government", "9121"),
    "federal - judicial": ("court", "9211"),
    "tribal": ("tribal", None),
    "school district": (SCHOOL_DISTRICT, "8211"),
    "interstate": ("interstate_agency", None),
}


def ntee_to_sic(ntee_code: str | None) -> str | None:
    if not ntee_code:
        return None
    code = ntee_code.strip().upper()
    for prefix, sic_code in _NTEE_TO_SIC:
        if code.startswith(prefix):
            return sic_code
    return None


def _government_type(code: str | None) -> tuple[str | None, str | None]:
    if not code:
        return None, None
    kind = code.strip().lower()
    if kind.endswith("- election"):
        # Election offices of any level of government.
        return "election_office", None
    return _GOVERNMENT_TYPES.get(kind, (None, None))


def classify_from_supplier(
    category: str, code: str | None, text_result: Classification
) -> Classification | None:
    """The supplier's category fixes the entity type; the name's own rule result may still add the SIC."""
    kind = category.strip().lower()
    if kind == "government":
        subtype, sic_code = _government_type(code)
        if text_result.entity_type == "government":
            subtype = subtype or text_result.subtype
            sic_code = sic_code or text_result.sic_code
        reason = f"matched supplier is a government organisation ({code or 'type not given'})"
        return _supplier_result("government", subtype, sic_code, reason)
    if kind == "nonprofit":
        sic_code = ntee_to_sic(code) or (
            text_result.sic_code if text_result.entity_type == "business" else None
        )
        reason = f"matched supplier is a tax-exempt organisation (NTEE {code or 'not given'})"
        return _supplier_result("business", NONPROFIT, sic_code, reason)
    if kind == "business":
        from_text = text_result.entity_type == "business"
        return _supplier_result(
            "business",
            text_result.subtype if from_text else None,
            text_result.sic_code if from_text else None,
            "matched supplier is a business",
        )
    return None


def _supplier_result(
    entity_type: str, subtype: str | None, sic_code: str | None, reason: str
) -> Classification:
    if sic_code is not None and not is_valid_sic(sic_code):
        sic_code = None
    return Classification(
        entity_type,
        subtype,
        sic_code,
        sic_description(sic_code),
        _SUPPLIER_CONFIDENCE,
        "supplier",
        reason,
        organisation_evidence=True,
    )
