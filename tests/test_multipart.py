"""
numberok.sources.multipart: the one multipart/form-data splitter of the
camera and pushed-read edges.
"""

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from numberok.sources.formats import ReadFormatError
from numberok.sources.multipart import Part, multipartParts

BOUNDARY = "numberok-test-boundary"


def body(parts, boundary=BOUNDARY):
    out = b""
    for name, filename, kind, data in parts:
        disposition = 'form-data; name="%s"' % (name,)
        if filename:
            disposition += '; filename="%s"' % (filename,)
        out += (b"--%s\r\nContent-Disposition: %s\r\nContent-Type: %s\r\n\r\n"
                % (boundary.encode(), disposition.encode(), kind.encode())
                + data + b"\r\n")
    return out + b"--%s--\r\n" % (boundary.encode(),)


names = st.text("abcdefgh._-", min_size=1, max_size=8)


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(
    names, st.one_of(st.just(""), names),
    st.sampled_from(["application/json", "image/jpeg", "text/plain"]),
    st.binary(max_size=80).filter(lambda b: BOUNDARY.encode() not in b)),
    min_size=1, max_size=4))
def test_parts_come_back_as_sent(parts):
    got = multipartParts("multipart/form-data; boundary=" + BOUNDARY,
                         body(parts), 4)
    assert got == [Part(*p) for p in parts]


@pytest.mark.parametrize("contentType", [
    'multipart/form-data; boundary="%s"' % (BOUNDARY,),
    "multipart/form-data; charset=utf-8; boundary=%s" % (BOUNDARY,),
    "multipart/form-data; boundary*=utf-8''%s" % (BOUNDARY,),
])
def test_a_quoted_or_encoded_boundary_is_found(contentType):
    [part] = multipartParts(contentType, body([("read", "", "text/plain",
                                                b"x")]), 2)
    assert part.payload == b"x"


def test_too_many_parts_are_refused_with_the_callers_advice():
    many = body([("p", "", "text/plain", b"x")] * 9)
    with pytest.raises(ReadFormatError) as caught:
        multipartParts("multipart/form-data; boundary=" + BOUNDARY, many, 8,
                       "; send fewer")
    assert (caught.value.field, caught.value.message) == (
        "body", "more than 8 parts; send fewer")


def test_a_missing_boundary_names_the_content_type():
    with pytest.raises(ReadFormatError) as caught:
        multipartParts("multipart/form-data", body([]), 8)
    assert caught.value.field == "Content-Type"


@hsettings(max_examples=200, deadline=None)
@given(st.sampled_from(["multipart/form-data",
                        "multipart/form-data; boundary=" + BOUNDARY,
                        "multipart/form-data; boundary=", "text/plain", ""]),
       st.binary(max_size=400))
def test_any_body_raises_only_read_format_error(contentType, data):
    try:
        multipartParts(contentType, data, 8)
    except ReadFormatError as e:
        assert e.field and e.message


# -- issue 21, attacks 1 and 4: bounded before parsing, our error only -------

CONTENT_TYPE = "multipart/form-data; boundary=" + BOUNDARY


def rawPart(headers: bytes, data: bytes = b"x") -> bytes:
    return (b"--%s\r\n" % (BOUNDARY.encode(),) + headers + b"\r\n\r\n"
            + data + b"\r\n--%s--\r\n" % (BOUNDARY.encode(),))


def refusal(contentType: str, data: bytes) -> tuple[str, str]:
    with pytest.raises(ReadFormatError) as caught:
        multipartParts(contentType, data, 16)
    return caught.value.field, caught.value.message


def test_a_disposition_with_many_parameters_is_refused_by_name():
    params = b"".join(b'; p%d="v"' % (i,) for i in range(20))
    field, message = refusal(CONTENT_TYPE, rawPart(
        b"Content-Disposition: form-data; name=\"read\"" + params))
    assert field == "parts[0].Content-Disposition"
    assert "parameters" in message


def test_the_reported_50000_parameter_disposition_is_refused_unparsed():
    params = b"".join(b'; p%d="v"' % (i,) for i in range(50000))
    field, message = refusal(CONTENT_TYPE, rawPart(
        b"Content-Disposition: form-data; name=\"read\"" + params))
    assert field == "parts[0]" and "header block larger" in message


def test_a_header_block_over_its_limit_is_refused_by_name():
    field, message = refusal(CONTENT_TYPE, rawPart(
        b"Content-Disposition: form-data; name=\"" + b"n" * 20000 + b"\""))
    assert field == "parts[0]" and "header" in message


def test_too_many_header_lines_in_a_part_are_refused():
    field, _ = refusal(CONTENT_TYPE, rawPart(
        b"\r\n".join(b"X-H%d: v" % (i,) for i in range(100))))
    assert field == "parts[0]"


def test_nested_multipart_is_refused_whatever_its_inner_parts():
    inner = b"--inner\r\n\r\nx\r\n" * 1000 + b"--inner--"
    field, message = refusal(CONTENT_TYPE, rawPart(
        b"Content-Type: multipart/mixed; boundary=inner", inner))
    assert field == "parts[0].Content-Type" and "nested" in message


@pytest.mark.parametrize("brackets, field", [
    (1000, "parts[0].Content-Type"), (100000, "parts[0]")])
def test_a_content_type_of_brackets_is_a_named_error_not_a_recursion(
        brackets, field):
    assert refusal(CONTENT_TYPE, rawPart(
        b"Content-Type: " + b"(" * brackets))[0] == field


def test_a_request_content_type_with_thousands_of_parameters_is_refused():
    params = "".join("; p%d=v" % (i,) for i in range(5000))
    field, _ = refusal(CONTENT_TYPE + params, rawPart(b""))
    assert field == "Content-Type"


def test_a_boundary_longer_than_rfc_2046_allows_is_refused():
    field, _ = refusal("multipart/form-data; boundary=" + "b" * 200,
                       rawPart(b""))
    assert field == "Content-Type"


def test_a_utf8_filename_and_an_encoded_one_are_read():
    [part] = multipartParts(CONTENT_TYPE, rawPart(
        'Content-Disposition: form-data; name="jpeg"; '
        'filename="кадр.jpg"'.encode("utf-8")), 2)
    assert (part.name, part.filename) == ("jpeg", "кадр.jpg")
    [part] = multipartParts(CONTENT_TYPE, rawPart(
        b"Content-Disposition: form-data; name=\"jpeg\"; "
        b"filename*=utf-8''%D0%BA.jpg"), 2)
    assert part.filename == "к.jpg"


def test_a_quoted_parameter_keeps_its_escaped_quote_and_semicolon():
    [part] = multipartParts(CONTENT_TYPE, rawPart(
        b'Content-Disposition: form-data; name="a\\"b;c"'), 2)
    assert part.name == 'a"b;c'


@hsettings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.binary(max_size=600))
def test_arbitrary_content_type_and_body_raise_only_our_error(contentType,
                                                               data):
    try:
        multipartParts(contentType, data, 16)
    except ReadFormatError as e:
        assert e.field and e.message


headerLines = st.lists(st.sampled_from([
    b"Content-Disposition: form-data; name=\"read\"",
    b"Content-Disposition: form-data; name*=utf-8''%ZZ",
    b"Content-Disposition: ;;;=\"",
    b"Content-Type: application/json", b"Content-Type: ((",
    b"Content-Type: multipart/mixed", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: x-uuencode", b" folded", b"no colon",
    b"Content-Type: text/plain; charset=\"unterminated"]), max_size=5)


@hsettings(max_examples=300, deadline=None)
@given(headerLines, st.binary(max_size=80))
def test_arbitrary_part_headers_raise_only_our_error(lines, data):
    try:
        multipartParts(CONTENT_TYPE, rawPart(b"\r\n".join(lines), data), 16)
    except ReadFormatError as e:
        assert e.field and e.message
