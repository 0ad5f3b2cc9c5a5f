"""Vocabularies shared by the normaliser, the matcher and the classifier, each defined once.

Everything here is data: upper-case ASCII tokens as ``domain.normalize`` produces them.
"""

from __future__ import annotations

# Legal forms, canonical spelling first, grouped by the kind of entity they make. Two names
# whose forms fall in different families name different legal entities ("ACME LLC" is not
# "ACME SRL"); forms of one family are swapped freely by payment files ("ACME INC" / "ACME CORP").
LEGAL_FORM_FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "corporation": {
        "INC": ("INC", "INCORPORATED", "INCORPORATION"),
        "CORP": ("CORP", "CORPORATION", "CORPORATIONS"),
        "CO": ("CO", "COMPANY", "COMPANIES", "COS"),
    },
    # "Ltd", "Co., Ltd.": the British and East Asian company, not a US corporation.
    "limited": {"LTD": ("LTD", "LIMITED")},
    "llc": {"LLC": ("LLC",), "PLLC": ("PLLC",)},
    "partnership": {"LP": ("LP",), "LLP": ("LLP",), "LLLP": ("LLLP",)},
    "professional": {"PC": ("PC",)},
    "bank": {"NA": ("NA",)},
}
# Forms no US company takes, each its own country's kind of company: a holder of one is
# registered abroad whatever a registry's country field says, and a payee writing one is paid abroad.
FOREIGN_LEGAL_FORM_FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "plc": {"PLC": ("PLC",)},
    "gmbh": {"GMBH": ("GMBH", "MBH")},
    "ag": {"AG": ("AG",)},
    "kg": {"KG": ("KG",)},
    "sa": {"SA": ("SA",), "SAS": ("SAS",), "SARL": ("SARL",), "SAB": ("SAB",), "SCA": ("SCA",), "CIE": ("CIE",)},
    "ulc": {"ULC": ("ULC",)},
    "srl": {"SRL": ("SRL",)},
    "sl": {"SL": ("SL",)},
    "bv": {"BV": ("BV",)},
    "nv": {"NV": ("NV",)},
    "nordic": {"AB": ("AB",), "OY": ("OY", "OYJ"), "ASA": ("ASA",), "APS": ("APS",)},
    "kk": {"KK": ("KK", "KABUSHIKI", "KAISHA")},
    "pty": {"PTY": ("PTY",)},
    "asian": {"PVT": ("PVT",), "SDN": ("SDN",), "BHD": ("BHD",), "TBK": ("TBK",)},
    "latin": {"LTDA": ("LTDA",), "EIRELI": ("EIRELI",), "CV": ("CV",), "CIA": ("CIA",)},
}
FOREIGN_LEGAL_FAMILIES = frozenset(FOREIGN_LEGAL_FORM_FAMILIES)
LEGAL_FORM_FAMILIES |= FOREIGN_LEGAL_FORM_FAMILIES
# Canonical legal form → its spellings, and spelling → canonical form.
LEGAL_FORMS: dict[str, tuple[str, ...]] = {
    canonical: spellings for family in LEGAL_FORM_FAMILIES.values() for canonical, spellings in family.items()
}
LEGAL_SUFFIXES: dict[str, str] = {
    spelling: canonical for canonical, spellings in LEGAL_FORMS.items() for spelling in spellings
}
LEGAL_FORM_FAMILY: dict[str, str] = {
    canonical: family for family, forms in LEGAL_FORM_FAMILIES.items() for canonical in forms
}
# Legal forms that are also everyday words ("SAN DIEGO ZOO", "DAY SPA"): the classifier reads
# them as a legal form at the end of a longer name, the normaliser keeps them in the name.
LEGAL_FORMS_ALSO_WORDS = frozenset("AS SE SPA ZOO SPZOO".split())
# Legal forms that are also everyday abbreviations (Colorado, Pennsylvania, "Attorney General"):
# they count as a legal form only as the last word of a longer name.
LEGAL_FORMS_ALSO_ABBREVIATIONS = frozenset("CO PA SA AG AS AB NV BV SE CV SL KK OY NA".split())
# Families only companies run for profit have: a nonprofit or a government body is none of them.
FOR_PROFIT_FAMILIES = frozenset({"llc", "partnership", "professional", "bank"})

# Abbreviations expanded to the full word: the full word keeps prefix matching of truncated
# names working ("ASSOCIA…" is a prefix of ASSOCIATION, not of ASSN). Words that are
# themselves ambiguous (SAINT/STREET, MOUNT/MONTANA) are contracted instead, see below.
ABBREVIATIONS: dict[str, str] = {
    "ACAD": "ACADEMY",
    "ADMIN": "ADMINISTRATION",
    "ASSN": "ASSOCIATION",
    "ASSNS": "ASSOCIATIONS",
    "ASSOC": "ASSOCIATION",
    "ASSOCS": "ASSOCIATES",
    "ASSO": "ASSOCIATION",
    "ASN": "ASSOCIATION",
    "AUTH": "AUTHORITY",
    "AUX": "AUXILIARY",
    "BD": "BOARD",
    "BLDG": "BUILDING",
    "BROS": "BROTHERS",
    "CNTR": "CENTER",
    "CTR": "CENTER",
    "CENTRE": "CENTER",
    "CHAP": "CHAPTER",
    "CMTY": "COMMUNITY",
    "CNTY": "COUNTY",
    "COOP": "COOPERATIVE",
    "DEPT": "DEPARTMENT",
    "DEPTS": "DEPARTMENTS",
    "DPT": "DEPARTMENT",
    "DIST": "DISTRICT",
    "DIV": "DIVISION",
    "EDUC": "EDUCATION",
    "FDN": "FOUNDATION",
    "FNDN": "FOUNDATION",
    "FNDTN": "FOUNDATION",
    "GOVT": "GOVERNMENT",
    "GRP": "GROUP",
    "HOSP": "HOSPITAL",
    "HSG": "HOUSING",
    "INST": "INSTITUTE",
    "INTL": "INTERNATIONAL",
    "INTERNATL": "INTERNATIONAL",
    "MEML": "MEMORIAL",
    "MFG": "MANUFACTURING",
    "MGMT": "MANAGEMENT",
    "MGT": "MANAGEMENT",
    "MTN": "MOUNTAIN",
    "NATL": "NATIONAL",
    "ORG": "ORGANIZATION",
    "ORGS": "ORGANIZATIONS",
    "ORGANISATION": "ORGANIZATION",
    "PROG": "PROGRAM",
    "SCH": "SCHOOL",
    "SOC": "SOCIETY",
    "SVC": "SERVICE",
    "SVCS": "SERVICES",
    "SYS": "SYSTEMS",
    "TWP": "TOWNSHIP",
    "UNIV": "UNIVERSITY",
    "UTD": "UNITED",
    "VOL": "VOLUNTEER",
    # Contractions: the long form is unambiguous, the short one is not.
    "SAINT": "ST",
    "MOUNT": "MT",
    "FORT": "FT",
    "FIRST": "1ST",
    "SECOND": "2ND",
    "THIRD": "3RD",
    "FOURTH": "4TH",
    "FIFTH": "5TH",
}

# US states and territories: postal code → name (as normalised tokens).
US_STATES: dict[str, str] = {
    "AL": "ALABAMA", "AK": "ALASKA", "AZ": "ARIZONA", "AR": "ARKANSAS", "CA": "CALIFORNIA", "CO": "COLORADO",
    "CT": "CONNECTICUT", "DE": "DELAWARE", "DC": "DISTRICT OF COLUMBIA", "FL": "FLORIDA", "GA": "GEORGIA",
    "HI": "HAWAII", "ID": "IDAHO", "IL": "ILLINOIS", "IN": "INDIANA", "IA": "IOWA", "KS": "KANSAS",
    "KY": "KENTUCKY", "LA": "LOUISIANA", "ME": "MAINE", "MD": "MARYLAND", "MA": "MASSACHUSETTS",
    "MI": "MICHIGAN", "MN": "MINNESOTA", "MS": "MISSISSIPPI", "MO": "MISSOURI", "MT": "MONTANA",
    "NE": "NEBRASKA", "NV": "NEVADA", "NH": "NEW HAMPSHIRE", "NJ": "NEW JERSEY", "NM": "NEW MEXICO",
    "NY": "NEW YORK", "NC": "NORTH CAROLINA", "ND": "NORTH DAKOTA", "OH": "OHIO", "OK": "OKLAHOMA",
    "OR": "OREGON", "PA": "PENNSYLVANIA", "RI": "RHODE ISLAND", "SC": "SOUTH CAROLINA", "SD": "SOUTH DAKOTA",
    "TN": "TENNESSEE", "TX": "TEXAS", "UT": "UTAH", "VT": "VERMONT", "VA": "VIRGINIA", "WA": "WASHINGTON",
    "WV": "WEST VIRGINIA", "WI": "WISCONSIN", "WY": "WYOMING", "PR": "PUERTO RICO", "GU": "GUAM",
    "VI": "VIRGIN ISLANDS", "AS": "AMERICAN SAMOA", "MP": "NORTHERN MARIANA ISLANDS",
}
US_STATE_CODES = frozenset(US_STATES)
# The states of each national ZIP area, by a ZIP's first digit (USPS): "PORT WASHINGTON 11050"
# is no town of Washington state.
US_ZIP_AREA_STATES: dict[str, frozenset[str]] = {
    digit: frozenset(states.split())
    for digit, states in {
        "0": "CT MA ME NH NJ NY PR RI VT VI", "1": "DE NY PA", "2": "DC MD NC SC VA WV",
        "3": "AL FL GA MS TN", "4": "IN KY MI OH", "5": "IA MN MT ND SD WI", "6": "IL KS MO NE",
        "7": "AR LA OK TX", "8": "AZ CO ID NM NV UT WY", "9": "AK AS CA GU HI MP OR WA",
    }.items()
}
# ... and the ZIP prefixes outside their state's area: the federal government's, El Paso's.
US_ZIP_PREFIX_STATES = {"569": "DC", "885": "TX"}
US_STATE_BY_NAME: dict[str, str] = {name: code for code, name in US_STATES.items()}
# Every word of a state's name ("NEW", "YORK", "CAROLINA"...).
US_STATE_NAME_WORDS = frozenset(word for name in US_STATES.values() for word in name.split())

# Words naming a kind of organisation affiliated with another but a different entity: on one
# side of a pair of names only, they say "the company's foundation", "its employees' credit
# union", "the national body's state chapter", "its political action committee" (or a school's
# parent advisory council), "its advocacy fund" (campaign files pay those) — not the same payee.
AFFILIATED_BODY_WORDS = frozenset(
    "FOUNDATION FOUNDATIONS CREDIT FCU EMPLOYEES EMPLOYEE RETIREES AUXILIARY ALUMNI CHAPTER POST LOCAL "
    "BOOSTER BOOSTERS PTA PTO PTSA PTSO CLUB LODGE FRIENDS ENDOWMENT SCHOLARSHIP GUILD VOLUNTEERS "
    "TRUST UNION COUNCIL AUXILLARY ALUMNAE FRATERNITY SORORITY PAC COMMITTEE ADVOCACY".split()
)

# Words a payment file appends to a supplier's name to say which account, service line or
# sales arm is paid ("ACME WIRELESS", "ACME MERCHANT ACCOUNT", "MAPLE COUNTY GENERAL FUND",
# "ACME US INC", "ACME SALES CORPORATION"): read without them, the payee may be the supplier.
DESCRIPTOR_TAIL_WORDS = frozenset(
    "WIRELESS SERVICES SERVICE MERCHANT ACCOUNT ACCOUNTS GENERAL FUND PAYMENTS PAYMENT BILLING REMITTANCE "
    "LOCKBOX RECEIVABLE SALES US USA AMERICA AMERICAS NORTH HOLDINGS OPERATIONS".split()
)

# The United States as records write it (normalised: "U.S.A." is "U S A").
US_COUNTRY_NAMES = frozenset({"US", "USA", "U S", "U S A", "UNITED STATES", "UNITED STATES OF AMERICA", "AMERICA"})
# A name ending in one of these says its holder is the US arm ("ACME AMERICA", "ACME USA INC").
US_COUNTRY_WORDS = frozenset("US USA AMERICA AMERICAS".split())

# Name words of bodies that are one organisation nationwide: their registered address is a
# head office, and a payee paid elsewhere is still them.
NATIONAL_BODY_WORDS = frozenset("NATIONAL AMERICAN INTERNATIONAL UNITED STATES US USA FEDERAL".split())

# Person-name furniture: titles before a name, generations and credentials after it.
PERSON_TITLES = frozenset("MR MRS MS MISS MX DR PROF REV REVEREND HON SIR MADAM MME MLLE SR SRA SRTA FR DRA".split())
GENERATIONAL_SUFFIXES = frozenset("JR SR II III IV V".split())
# Credentials and one-person professions after a name ("JANE ROE, ATTORNEY AT LAW") describe a person.
CREDENTIALS = frozenset(
    "MD DDS DMD PHD ESQ ESQUIRE CPA RN LPN NP PA DO DVM OD DC JD MBA LCSW LMFT PE "
    "CFP EA AIA FAIA GRI CSI ATTORNEY REALTOR ARCHITECT AT LAW".split()
)
