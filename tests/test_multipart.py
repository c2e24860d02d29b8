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
