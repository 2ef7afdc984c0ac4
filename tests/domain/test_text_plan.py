from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgw.domain.text import ENCODINGS, gsm_septets, plan_text, utf16_units
from smsgw.errors import CgiError, EncodingError

EXTENSION = "^{}\\[~]|€\f"
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EMOJI = "\U0001f600"  # one character, a surrogate pair in UTF-16
SINGLE = ("ASCII", "PASCII", "BIG5", "PBIG5", "UCS2")
LONG = ("LASCII", "LBIG5", "LUCS2")


def test_encodings() -> None:
    """The nine smsgo encodings are known."""
    assert {"BIG5", "ASCII", "UCS2", "PBIG5", "PASCII", "LBIG5", "LASCII", "LUCS2", "PUSH"} == (
        ENCODINGS
    )


def test_unknown_encoding() -> None:
    """An encoding outside the table is an encoding error naming it."""
    with pytest.raises(EncodingError) as caught:
        plan_text("UTF8", "hi")
    assert caught.value.detail == "UTF8"


def test_gsm_basic_table_is_one_septet_each() -> None:
    """Every character of the GSM basic table takes one septet."""
    assert len(GSM_BASIC) == 127
    assert gsm_septets(GSM_BASIC) == 127


def test_gsm_extension_table_is_two_septets_each() -> None:
    """Every character of the extension table, form feed included, takes two septets."""
    assert gsm_septets(EXTENSION) == 2 * len(EXTENSION)


@pytest.mark.parametrize("char", ["`", "\t", "\x1b", "中", "ç", EMOJI, "\x00"])
def test_gsm_refuses_characters_outside_the_tables(char: str) -> None:
    """Characters GSM 7-bit cannot carry (a lone escape included) are not GSM text."""
    assert gsm_septets(f"a{char}b") is None


def test_utf16_units_count_surrogate_pairs() -> None:
    """A character beyond the BMP takes two UTF-16 units."""
    assert utf16_units("中文") == 2
    assert utf16_units(f"a{EMOJI}") == 3


@pytest.mark.parametrize(
    ("length", "kept"), [(159, 159), (160, 160), (161, 160)], ids=["159", "160", "161"]
)
def test_ascii_truncates_to_160_septets(length: int, kept: int) -> None:
    """ASCII keeps at most 160 septets in one GSM SMS."""
    plan = plan_text("ASCII", "a" * length)
    assert (plan.coding, plan.flash, plan.segments) == ("gsm7", False, 1)
    assert plan.body == "a" * kept
    assert plan.parts == (plan.body,)
    assert plan.wapurl is None


def test_ascii_never_splits_an_extension_character() -> None:
    """An extension character that would straddle septet 160 is dropped whole."""
    plan = plan_text("ASCII", "a" * 159 + "€")
    assert plan.body == "a" * 159
    plan = plan_text("ASCII", "a" * 158 + "€b")
    assert plan.body == "a" * 158 + "€"


def test_pascii_is_flash_gsm() -> None:
    """PASCII is ASCII sent as a class 0 (flash) message."""
    plan = plan_text("PASCII", "a" * 170)
    assert (plan.coding, plan.flash, plan.segments, plan.body) == ("gsm7", True, 1, "a" * 160)


@pytest.mark.parametrize("encoding", ["BIG5", "UCS2", "PBIG5"])
@pytest.mark.parametrize(("length", "kept"), [(69, 69), (70, 70), (71, 70)])
def test_ucs2_truncates_to_70_units(encoding: str, length: int, kept: int) -> None:
    """BIG5, UCS2 and PBIG5 keep at most 70 UTF-16 units in one UCS-2 SMS."""
    plan = plan_text(encoding, "中" * length)
    assert (plan.coding, plan.segments, plan.body) == ("ucs2", 1, "中" * kept)
    assert plan.flash == (encoding == "PBIG5")


def test_ucs2_never_splits_a_surrogate_pair() -> None:
    """A surrogate pair that would straddle unit 70 is dropped whole."""
    assert plan_text("UCS2", "a" * 69 + EMOJI).body == "a" * 69
    assert plan_text("UCS2", "a" * 68 + EMOJI + "b").body == "a" * 68 + EMOJI


def test_big5_with_gsm_text_still_goes_as_ucs2() -> None:
    """BIG5 means UCS-2 on the air even for plain Latin text."""
    assert plan_text("BIG5", "hello").coding == "ucs2"


@pytest.mark.parametrize(("encoding", "flash"), [("ASCII", False), ("PASCII", True)])
def test_ascii_with_non_gsm_text_goes_as_ucs2(encoding: str, flash: bool) -> None:
    """Text GSM cannot carry goes as UCS-2 with the UCS-2 single-SMS limit."""
    plan = plan_text(encoding, "中" + "a" * 100)
    assert (plan.coding, plan.flash, plan.segments) == ("ucs2", flash, 1)
    assert plan.body == "中" + "a" * 69


@pytest.mark.parametrize("length", [159, 160])
def test_lascii_that_fits_is_one_plain_sms(length: int) -> None:
    """LASCII text of up to 160 septets is one SMS."""
    plan = plan_text("LASCII", "a" * length)
    assert (plan.coding, plan.flash, plan.parts) == ("gsm7", False, ("a" * length,))


def test_lascii_over_160_splits_at_153_septets() -> None:
    """161 septets become a segment of 153 and one of 8."""
    plan = plan_text("LASCII", "a" * 161)
    assert [len(part) for part in plan.parts] == [153, 8]
    assert plan.segments == 2


def test_lascii_never_splits_an_extension_character_across_segments() -> None:
    """An extension character at septet 153 moves whole into the next segment."""
    plan = plan_text("LASCII", "a" * 152 + "€" + "b" * 10)
    assert plan.parts == ("a" * 152, "€" + "b" * 10)


def test_lascii_truncates_to_330_characters() -> None:
    """LASCII keeps 330 characters, even when extension characters double their septets."""
    plan = plan_text("LASCII", "a" * 331)
    assert plan.body == "a" * 330
    assert [len(part) for part in plan.parts] == [153, 153, 24]
    plan = plan_text("LASCII", "€" * 331)
    assert plan.body == "€" * 330
    assert plan.segments == 5
    assert all(gsm_septets(part) == 152 for part in plan.parts[:4])


def test_lascii_judges_gsm_on_the_kept_330_characters() -> None:
    """A non-GSM character beyond the 330 kept characters does not force UCS-2."""
    plan = plan_text("LASCII", "a" * 330 + "中")
    assert (plan.coding, plan.body) == ("gsm7", "a" * 330)


def test_lascii_with_non_gsm_text_uses_long_ucs2() -> None:
    """LASCII text GSM cannot carry is planned as LUCS2."""
    text = "中" * 100
    assert plan_text("LASCII", text) == plan_text("LUCS2", text)
    assert plan_text("LASCII", text).coding == "ucs2"


@pytest.mark.parametrize("encoding", ["LBIG5", "LUCS2"])
def test_long_ucs2_boundaries(encoding: str) -> None:
    """Up to 70 units is one SMS; beyond, segments of 67 units; 330 characters at most."""
    assert plan_text(encoding, "中" * 70).parts == ("中" * 70,)
    assert [len(p) for p in plan_text(encoding, "中" * 71).parts] == [67, 4]
    plan = plan_text(encoding, "中" * 400)
    assert plan.body == "中" * 330
    assert [len(p) for p in plan.parts] == [67, 67, 67, 67, 62]
    assert (plan.coding, plan.flash) == ("ucs2", False)


def test_long_ucs2_never_splits_a_surrogate_pair_across_segments() -> None:
    """A surrogate pair at unit 67 moves whole into the next segment."""
    plan = plan_text("LUCS2", "a" * 66 + EMOJI + "b" * 10)
    assert plan.parts == ("a" * 66, EMOJI + "b" * 10)


def test_push_within_88_bytes() -> None:
    """A PUSH whose title and URL fit 88 bytes is one WAP push with its URL."""
    plan = plan_text("PUSH", "t" * 68, "http://example.com/x")
    assert (plan.coding, plan.body, plan.parts) == ("push", "t" * 68, ("t" * 68,))
    assert plan.wapurl == "http://example.com/x"
    assert plan.segments == 1


def test_push_counts_chinese_characters_as_three_bytes() -> None:
    """Chinese title characters take 3 bytes each toward the 88-byte limit."""
    url = "http://example.com/"  # 19 bytes
    assert plan_text("PUSH", "中" * 23, url).coding == "push"  # 69 + 19 = 88
    plan = plan_text("PUSH", "中" * 24, url)  # 72 + 19 = 91
    assert plan.coding == "ucs2"
    assert plan.body == "中" * 24 + " " + url
    assert plan.wapurl is None


def test_push_over_88_bytes_becomes_a_long_gsm_sms() -> None:
    """A PUSH over 88 bytes is planned like LASCII on title, space and URL."""
    url = "http://example.com/" + "p" * 60
    plan = plan_text("PUSH", "t" * 100, url)
    assert plan == plan_text("LASCII", "t" * 100 + " " + url)
    assert (plan.coding, plan.segments, plan.wapurl) == ("gsm7", 2, None)


def test_push_without_url_is_refused() -> None:
    """PUSH needs a wapurl."""
    with pytest.raises(CgiError) as caught:
        plan_text("PUSH", "title")
    assert caught.value.detail == "wapurl"


gsm_text = st.text(alphabet=GSM_BASIC + EXTENSION, max_size=400)
any_text = st.text(max_size=400)


@given(any_text, st.sampled_from(sorted(ENCODINGS - {"PUSH"})))
def test_parts_rejoin_to_the_body(text: str, encoding: str) -> None:
    """The parts of any plan join to its body, which is a prefix of the text."""
    plan = plan_text(encoding, text)
    assert "".join(plan.parts) == plan.body
    assert text.startswith(plan.body)
    assert plan.segments == len(plan.parts) >= 1


@given(st.one_of(gsm_text, any_text), st.sampled_from(SINGLE))
def test_single_encodings_fit_one_sms(text: str, encoding: str) -> None:
    """A single-SMS encoding never exceeds 160 septets or 70 units."""
    plan = plan_text(encoding, text)
    assert plan.segments == 1
    if plan.coding == "gsm7":
        assert (gsm_septets(plan.body) or 0) <= 160
    else:
        assert utf16_units(plan.body) <= 70


@given(st.one_of(gsm_text, any_text), st.sampled_from(LONG))
def test_long_encodings_keep_parts_within_limits(text: str, encoding: str) -> None:
    """Long-SMS parts are one SMS within single limits or segments within segment limits."""
    plan = plan_text(encoding, text)
    assert len(plan.body) <= 330
    assert plan.body == text[:330]
    if plan.coding == "gsm7":
        sizes = [gsm_septets(part) or 0 for part in plan.parts]
        assert max(sizes) <= (160 if plan.segments == 1 else 153)
    else:
        sizes = [utf16_units(part) for part in plan.parts]
        assert max(sizes) <= (70 if plan.segments == 1 else 67)


@given(gsm_text)
def test_truncation_keeps_as_much_as_fits(text: str) -> None:
    """ASCII truncation stops only where the next character would not fit."""
    body = plan_text("ASCII", text).body
    if body != text:
        assert (gsm_septets(text[: len(body) + 1]) or 0) > 160
