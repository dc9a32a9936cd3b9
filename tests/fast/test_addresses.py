"""The canonical form of an email address (accounts/addresses.py): one address, one spelling."""

import pytest

from accounts.addresses import InvalidEmail, canonical_email, canonical_email_or_none


@pytest.mark.parametrize(
    "typed, canonical",
    [
        ("Nurse@Example.ORG", "nurse@example.org"),
        ("  nurse@example.org\t", "nurse@example.org"),
        ("nur\u017fe@example.org", "nurse@example.org"),  # LONG S
        ("nurse\uff20example.org", "nurse@example.org"),  # FULLWIDTH COMMERCIAL AT
        ("nurse@\u017fis-hospital.example", "nurse@sis-hospital.example"),
        ("nurse@exa\u200bmple.org", "nurse@example.org"),  # IDNA drops a zero-width space
        ("nurse@B\u00fccher.example", "nurse@xn--bcher-kva.example"),  # an IDN keeps its A-label
        ("STRASSE@example.org", "strasse@example.org"),
        ("stra\u00dfe@example.org", "strasse@example.org"),  # case folding: sharp s
    ],
)
def test_every_spelling_of_an_address_has_one_canonical_form(typed, canonical):
    assert canonical_email(typed) == canonical
    assert canonical.isascii() and canonical == canonical.lower()


@pytest.mark.parametrize(
    "typed",
    [
        "nurse\u0430@example.org",  # CYRILLIC SMALL LETTER A
        "nurse\u0131@example.org",  # LATIN SMALL LETTER DOTLESS I
        "nur\u200bse@example.org",  # ZERO WIDTH SPACE before the @
        "no-at-sign.example.org",
        "@example.org",
        "nurse@",
        "",
        None,
        "x" * 250 + "@example.org",
        "nurse@exa mple.org",
    ],
)
def test_what_has_no_canonical_form_is_refused(typed):
    with pytest.raises(InvalidEmail):
        canonical_email(typed)
    assert canonical_email_or_none(typed) is None


def test_a_dotless_i_domain_is_another_domain():
    assert canonical_email("nurse@\u0131s-hospital.example") != canonical_email("nurse@is-hospital.example")
