"""The subject of a certificate signing request (F7.1): field limits and the ISO 3166-1 country list.

Pure validation; the provider turns a `CsrSubject` into an X.509 name and signs the request. Values are
kept exactly as given (an organisation name keeps its punctuation and case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openkms.errors import InvalidArgument, MissingParameter

# Upper bounds from RFC 5280 appendix A (ub-common-name 64, ub-organization-name 64, ...).
FIELD_LIMITS = {
    "CommonName": 64,
    "Organization": 64,
    "OrganizationalUnit": 64,
    "Province": 128,
    "Locality": 128,
    "Email": 255,
}

# ISO 3166-1 alpha-2 officially assigned codes.
ISO_3166_ALPHA_2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 -- a block of codes reads better than 249 quoted strings
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")


@dataclass(frozen=True, slots=True)
class CsrSubject:
    common_name: str
    organization: str | None = None
    organizational_unit: str | None = None
    province: str | None = None
    locality: str | None = None
    country: str | None = None
    email: str | None = None


def make_subject(
    common_name: str | None,
    *,
    organization: str | None = None,
    organizational_unit: str | None = None,
    province: str | None = None,
    locality: str | None = None,
    country: str | None = None,
    email: str | None = None,
) -> CsrSubject:
    """A validated subject. CommonName is required; empty optional fields count as absent."""
    organization = organization or None
    organizational_unit = organizational_unit or None
    province = province or None
    locality = locality or None
    country = country or None
    email = email or None
    if not common_name:
        raise MissingParameter("CommonName")
    given = {
        "CommonName": common_name,
        "Organization": organization,
        "OrganizationalUnit": organizational_unit,
        "Province": province,
        "Locality": locality,
        "Email": email,
    }
    for name, value in given.items():
        if value is None:
            continue
        limit = FIELD_LIMITS[name]
        if len(value) > limit:
            raise InvalidArgument(f"{name} is longer than {limit} characters.", parameter=name)
        if value != value.strip() or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise InvalidArgument(
                f"{name} must not have control characters or leading or trailing spaces.", parameter=name
            )
    if country is not None and country not in ISO_3166_ALPHA_2:
        raise InvalidArgument(
            f"Country {country!r} is not an ISO 3166-1 alpha-2 code (two capital letters, e.g. CN, US).",
            parameter="Country",
        )
    if email is not None and (_EMAIL.match(email) is None or not email.isascii()):
        raise InvalidArgument(f"Email {email!r} is not an email address.", parameter="Email")
    return CsrSubject(
        common_name=common_name,
        organization=organization,
        organizational_unit=organizational_unit,
        province=province,
        locality=locality,
        country=country,
        email=email,
    )
