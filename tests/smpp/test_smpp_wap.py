"""Golden bytes for WAP Push SI, written by hand from the WAP-167 SI and WAP-230 WSP tables."""

from __future__ import annotations

from smsgw.smpp.wap import href_attribute, si_document, si_push

WBXML_HEADER = bytes.fromhex(
    "02"  # WBXML version 1.2
    "05"  # public id: -//WAPFORUM//DTD SI 1.0//EN
    "6A"  # charset UTF-8 (MIBenum 106)
    "00"  # string table length 0
)


def test_spec_example_document_is_tokenised_like_wap_167() -> None:
    """The WAP-167 appendix example href uses the http://www. prefix and the .com/ token."""
    document = si_document("You have 4 new emails", "http://www.xyz.com/email/123/abc.wml")
    expected = (
        WBXML_HEADER
        + bytes.fromhex("45")  # <si> with content
        + bytes.fromhex("C6")  # <indication> with attributes and content
        + bytes.fromhex("0D")  # href="http://www."
        + bytes.fromhex("03") + b"xyz" + bytes.fromhex("00")  # inline string "xyz"
        + bytes.fromhex("85")  # ".com/"
        + bytes.fromhex("03") + b"email/123/abc.wml" + bytes.fromhex("00")
        + bytes.fromhex("07")  # action="signal-medium"
        + bytes.fromhex("01")  # end of <indication> attributes
        + bytes.fromhex("03") + b"You have 4 new emails" + bytes.fromhex("00")
        + bytes.fromhex("01")  # </indication>
        + bytes.fromhex("01")  # </si>
    )  # fmt: skip
    assert document == expected


def test_push_pdu_starts_with_the_wsp_push_header() -> None:
    """The WSP header names the push PDU type and application/vnd.wap.sic in UTF-8."""
    push = si_push("Hi", "https://example.org/", transaction_id=0x1234)
    expected = (
        bytes.fromhex("34")  # transaction id: the low octet of the reference
        + bytes.fromhex("06")  # WSP PDU type: Push
        + bytes.fromhex("04")  # headers length (uintvar)
        + bytes.fromhex("03")  # content type, general form, 3 octets follow
        + bytes.fromhex("AE")  # application/vnd.wap.sic (0x2E | 0x80)
        + bytes.fromhex("81")  # parameter Charset (0x01 | 0x80)
        + bytes.fromhex("EA")  # UTF-8 (0x6A | 0x80)
        + WBXML_HEADER
        + bytes.fromhex("45C6")  # <si><indication ...
        + bytes.fromhex("0E")  # href="https://"
        + bytes.fromhex("03") + b"example" + bytes.fromhex("00")
        + bytes.fromhex("88")  # ".org/"
        + bytes.fromhex("0701")  # action="signal-medium", end of attributes
        + bytes.fromhex("03") + b"Hi" + bytes.fromhex("00")
        + bytes.fromhex("0101")  # </indication></si>
    )  # fmt: skip
    assert push == expected


def test_url_without_scheme_gets_http() -> None:
    """A wapurl without a scheme is read as http:// and tokenised with its prefix."""
    assert href_attribute("shop.example.net/x") == (
        bytes.fromhex("0C")  # href="http://"
        + bytes.fromhex("03") + b"shop.example" + bytes.fromhex("00")
        + bytes.fromhex("87")  # ".net/"
        + bytes.fromhex("03") + b"x" + bytes.fromhex("00")
    )  # fmt: skip


def test_https_www_prefix_and_edu_token() -> None:
    """https://www. has its own token and .edu/ its own value token."""
    assert href_attribute("https://www.uni.edu/") == (
        bytes.fromhex("0F")  # href="https://www."
        + bytes.fromhex("03") + b"uni" + bytes.fromhex("00")
        + bytes.fromhex("86")  # ".edu/"
    )  # fmt: skip


def test_other_scheme_goes_as_plain_href() -> None:
    """A scheme without a prefix token is written whole after the bare href token."""
    assert href_attribute("ftp://files.example/a") == (
        bytes.fromhex("0B") + bytes.fromhex("03") + b"ftp://files.example/a" + bytes.fromhex("00")
    )


def test_every_domain_token_is_used() -> None:
    """Each .com/ .net/ occurrence becomes its token, in order."""
    assert href_attribute("http://a.com/b.net/c") == (
        bytes.fromhex("0C")
        + bytes.fromhex("03") + b"a" + bytes.fromhex("00")
        + bytes.fromhex("85")
        + bytes.fromhex("03") + b"b" + bytes.fromhex("00")
        + bytes.fromhex("87")
        + bytes.fromhex("03") + b"c" + bytes.fromhex("00")
    )  # fmt: skip


def test_empty_title_leaves_indication_without_content() -> None:
    """An empty title gives an <indication> with attributes only and no content end token."""
    document = si_document("", "http://a")
    assert document == WBXML_HEADER + bytes.fromhex(
        "45"  # <si> with content
        "86"  # <indication> with attributes, no content
        "0C"  # href="http://"
        "036100"  # "a"
        "07"  # action="signal-medium"
        "01"  # end of attributes
        "01"  # </si>
    )


def test_title_is_utf8_and_nul_free() -> None:
    """A title is written in UTF-8 and a NUL in it cannot end the inline string early."""
    document = si_document("中\0文", "http://a")
    title = "中文".encode()
    assert document.endswith(bytes.fromhex("03") + title + bytes.fromhex("000101"))
