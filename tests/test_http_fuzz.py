"""Differential fuzzing of klr.http.parse_request with h11 as the oracle (issue 7, item 8).

Generated requests are mostly near-valid: every part of a valid request (request line, header
fields, framing headers, chunked body, trailers) is now and then swapped for a boundary case,
and some requests get a byte inserted, deleted or replaced at random. For each one, KLR must
accept exactly what h11 accepts and read the same method, target, version, headers, body and
trailers; what both refuse, KLR answers with one of its refusal statuses.

h11 is the oracle except where the issue's rules (RFC 9112, strict) deliberately differ: each
such rule is in `stricter_rules`, with the reason. Not generated: sizes near the limits (h11 has
no line limit; tests/test_http.py has the 414 and 431 cases), and framing fields among trailers
(see `chunked_body`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import h11
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from klr.errors import HttpError
from klr.http import Limits, parse_request

REFUSAL_STATUSES = {400, 414, 431, 501, 505}
# h11 buffers at most this much of an incomplete head; well above anything generated here, so
# its size limit never decides (generated lines stay far below KLR's 8 KB line limit too).
H11_BUFFER_LIMIT = 1024 * 1024
FRAMING_FIELDS = (b"content-length", b"transfer-encoding")


@dataclass(frozen=True)
class Accepted:
    method: bytes
    target: bytes
    version: bytes  # as in the request line: b"HTTP/1.1"
    fields: tuple[tuple[bytes, bytes], ...]  # every header but the framing ones, as sent
    framing: tuple[tuple[bytes, ...], tuple[bytes, ...]]  # see `framing`
    body: bytes
    trailers: tuple[tuple[bytes, bytes], ...]  # see `accepted`


@dataclass(frozen=True)
class Refused:
    status: int
    reason: str


INCOMPLETE = "incomplete"


def framing(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The Content-Length values and the Transfer-Encoding values, compared by meaning:
    h11 keeps one `Content-Length` of `5, 5` or of two equal headers, and lower-cases the
    transfer coding, where KLR keeps the headers as sent."""
    lengths = {
        item.strip()
        for name, value in headers
        if name.lower() == b"content-length"
        for item in value.split(b",")
    }
    codings = [value.lower() for name, value in headers if name.lower() == b"transfer-encoding"]
    return tuple(sorted(lengths)), tuple(codings)


def accepted(method, target, version, headers, body, trailers) -> Accepted:
    """A parsed request in the form both parsers' readings are compared in."""
    return Accepted(
        method=bytes(method),
        target=bytes(target),
        version=bytes(version),
        fields=tuple((n, v) for n, v in headers if n.lower() not in FRAMING_FIELDS),
        framing=framing(headers),
        body=bytes(body),
        # KLR keeps trailers by lower-case name (`Request.trailers`, a dict): compared so.
        trailers=tuple(
            sorted({n.lower(): v for n, v in trailers if n.lower() not in FRAMING_FIELDS}.items())
        ),
    )


@dataclass
class Oracle:
    """h11's verdict, with the raw head and trailer section that `stricter_rules` needs."""

    outcome: Accepted | Refused | str
    head: bytes = b""
    trailer_section: bytes = b""


def h11_verdict(data: bytes) -> Oracle:
    """What h11, as a server, makes of `data`: its reading, a refusal, or a need for more."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=H11_BUFFER_LIMIT)
    connection.receive_data(data)
    request, body, head, end_of_body, after_data = None, bytearray(), b"", 0, False
    try:
        while True:
            item = connection.next_event()
            if item is h11.NEED_DATA:
                return Oracle(INCOMPLETE)
            consumed = len(data) - len(connection.trailing_data[0])
            if isinstance(item, h11.Request):
                request, head, end_of_body = item, data[:consumed], consumed
            elif isinstance(item, h11.Data):
                body += item.data
                end_of_body, after_data = consumed, True
            elif isinstance(item, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected h11 event {item!r}")
    except h11.RemoteProtocolError as error:
        return Oracle(Refused(error.error_status_hint, str(error)))
    # A chunked body ends with the last chunk's CRLF, the `0` line, then the trailer section.
    tail = data[end_of_body:consumed]
    if tail:
        tail = tail[2:] if after_data else tail
        tail = tail[tail.index(b"\r\n") + 2 :]
    outcome = accepted(
        request.method,
        request.target,
        b"HTTP/" + request.http_version,
        request.headers.raw_items(),
        body,
        item.headers.raw_items(),
    )
    return Oracle(outcome, head, tail)


def klr_verdict(data: bytes) -> Accepted | Refused | str:
    """What klr.http.parse_request makes of `data`, in the same form."""
    try:
        request = parse_request(data, Limits())
    except HttpError as error:
        return Refused(error.status, str(error))
    if request is None:
        return INCOMPLETE

    def raw(pairs: list[tuple[str, str]] | dict[str, str]) -> list[tuple[bytes, bytes]]:
        pairs = pairs.items() if isinstance(pairs, dict) else pairs  # trailers are a dict
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs]

    return accepted(
        request.method.encode("latin-1"),
        request.target.encode("latin-1"),
        request.version.encode("latin-1"),
        raw(request.headers),
        request.body,
        raw(request.trailers),
    )


def has_obs_fold(lines: list[bytes]) -> bool:
    return any(line[:1] in (b" ", b"\t") for line in lines)


def stricter_rules(oracle: Oracle) -> dict[str, int]:
    """The issue's rules that refuse what h11 accepts: reason -> the status KLR answers."""
    request = oracle.outcome
    broken = {}
    if request.version not in (b"HTTP/1.0", b"HTTP/1.1"):
        # h11 reads any HTTP/D.D; the issue answers every version but 1.0 and 1.1 with 505.
        broken["version"] = 505
    if has_obs_fold(oracle.head.split(b"\n")[1:]) or has_obs_fold(
        oracle.trailer_section.split(b"\n")
    ):
        # h11 unfolds obs-fold lines; the issue refuses them (RFC 9112 section 5.2 allows it).
        broken["obs-fold"] = 400
    lengths, codings = request.framing
    if lengths and codings:
        # h11 lets Transfer-Encoding win (RFC 9112 section 6.3 allows that); the issue refuses
        # the pair, the classic request-smuggling ambiguity.
        broken["Content-Length with Transfer-Encoding"] = 400
    return broken


# Building blocks of requests. Each request has one or two areas in focus, where unusual (often
# invalid) choices are made; elsewhere all is usual. So most requests are near-valid, and
# each boundary is reached from an otherwise valid request.

AREAS = ["leading", "method", "target", "version", "request line"]
AREAS += ["name", "colon", "OWS", "value", "end of line", "obs-fold", "host"]
AREAS += ["length", "framing", "coding", "chunk size", "chunk ext", "chunk end", "trailers"]
AREAS += ["pipelining", "bytes"]
TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = bytes(range(0x21, 0x7F))
SPECIAL_BYTES = [b"\x00", b"\x01", b"\x7f", b"\x0b", b"\x0c", b"\r", b"\n", b"\t", b" "]
SPECIAL_BYTES += [b"\x80", b"\xff", b"\xe9", b"\xd9\xa1", b"\xb2", b":", b";", b",", b'"', b"("]
EOLS = [b"\n", b"\r", b"\r\r\n", b"\n\r", b" \r\n", b""]


@functools.cache
def below(count: int) -> st.SearchStrategy[int]:
    """0 to count - 1. One strategy per count: building strategies costs more than drawing."""
    return st.integers(0, count - 1)


def choose(draw, options: list):
    """One of `options`; shrinks towards the first."""
    return options[draw(below(len(options)))] if len(options) > 1 else options[0]


def visible(min_size: int = 0, max_size: int = 24) -> st.SearchStrategy[bytes]:
    """Strings of VCHAR: what a target or a simple field value is made of."""
    return st.binary(min_size=min_size, max_size=max_size).map(
        lambda raw: bytes(VCHAR[byte % len(VCHAR)] for byte in raw)
    )


TOKENS = st.text(TCHAR, min_size=1, max_size=12).map(str.encode)
VISIBLE, VISIBLE_TARGETS, FOLDED_TEXT = visible(), visible(1), visible(0, 8)
SHORT_BINARY, BODIES = st.binary(max_size=12), st.binary(max_size=40)


@dataclass(frozen=True)
class Focus:
    """The areas of a request where unusual choices are made, and how often (one in `odds`):
    often enough to combine boundaries, or seldom enough to meet one alone in a busy area."""

    areas: frozenset[str]
    odds: int

    def pick(self, draw, area: str, usual: list, unusual: list):
        """A usual value, or (in focus, at the odds) an unusual one; shrinks to usual[0].
        A choice that is a strategy is drawn from only when chosen."""
        rare = unusual and area in self.areas and draw(below(self.odds)) == self.odds - 1
        choice = choose(draw, unusual if rare else usual)
        return draw(choice) if isinstance(choice, st.SearchStrategy) else choice

    def spike(self, draw, area: str, value: bytes) -> bytes:
        """`value`, or it with a special byte put somewhere in it."""
        if not self.pick(draw, area, [False], [True]):
            return value
        at = draw(below(len(value) + 1))
        return value[:at] + choose(draw, SPECIAL_BYTES) + value[at:]


focuses = st.builds(
    Focus,
    st.frozensets(st.sampled_from(AREAS), min_size=1, max_size=2),
    st.sampled_from([2, 4, 10]),
)


def request_line(draw, focus: Focus) -> tuple[bytes, bytes]:
    """A request line with its end of line, and its HTTP version."""
    methods = [b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"]
    methods += [b"get", b"M-SEARCH", TOKENS]
    method = focus.pick(draw, "method", methods, [b"", b"G(ET", b"G\xc9T", b"GET/", b"G,ET"])
    method = focus.spike(draw, "method", method)
    targets = [b"/", b"/2015-03-31/functions/function/invocations", b"/a?b=c&d", b"*"]
    targets += [b"http://h/p", b"//", b"/%00", VISIBLE_TARGETS]
    target = focus.pick(draw, "target", targets, [b"", b"/a b", b"/\x80", b"/\x7f", b"/\t"])
    target = focus.spike(draw, "target", target)
    version = focus.pick(
        draw,
        "version",
        [b"HTTP/1.1", b"HTTP/1.0"],
        [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTTP/3", b"HTTP/1.10", b"http/1.1", b"HTTP/1"]
        + [b"HTTP /1.1", b"HTTP/1.1 ", b"HTTP/\xd9\xa1.1", b"HTTP/11", b"HTTP/1.1\x00", b""],
    )
    shapes = [[method, target], [method, version], [target, version], [method]]
    shapes += [[method, target, version, b"x"], [method, target, target, version]]
    parts = focus.pick(draw, "request line", [[method, target, version]], shapes)
    line = parts[0]
    for part in parts[1:]:
        line += focus.pick(draw, "request line", [b" "], [b"", b"  ", b"\t", b"\x0b", b"\r"])
        line += part
    return line + focus.pick(draw, "request line", [b"\r\n", b"\n"], EOLS), version


def field_line(draw, focus: Focus, name: bytes | None = None, value: bytes | None = None) -> bytes:
    """One header or trailer field line: name, colon, OWS, value, OWS, end of line."""
    if name is None:
        names = [b"Accept", b"X-Amz-Date", b"content-type", b"Lambda-Runtime-Trace-Id"]
        unusual = [b"", b"X Y", b"X\tY", b"X(Y)", b"X@Y", b"\xe9t\xe9", b"X/Y", b"{x}", b"X;"]
        name = focus.spike(draw, "name", focus.pick(draw, "name", [*names, TOKENS], unusual))
    if value is None:
        values = [b"", b"text/plain", b"a, b;q=0.5", b'"quoted, string"', b"a  \t b", b"caf\xe9"]
        values += [b"\x80\xff", VISIBLE]
        value = focus.pick(draw, "value", values, [SHORT_BINARY, b"a\r b"])
        value = focus.spike(draw, "value", value)
    line = name + focus.pick(draw, "colon", [b""], [b" ", b"\t", b"  ", b"\x0b"])
    line += focus.pick(draw, "colon", [b":"], [b"", b"::", b"=", b": :"])
    ows = [b" ", b"", b"\t", b"  ", b" \t "], [b"\x0b", b"\x0c", b"\x00", b"\r"]
    line += focus.pick(draw, "OWS", *ows) + value + focus.pick(draw, "OWS", *ows)
    line += focus.pick(draw, "end of line", [b"\r\n", b"\n"], EOLS)
    if focus.pick(draw, "obs-fold", [False], [True]):  # a continuation line
        fold = focus.pick(draw, "obs-fold", [b" ", b"\t", b"  "], [])
        line += fold + draw(FOLDED_TEXT) + focus.pick(draw, "obs-fold", [b"\r\n"], [b"\n"])
    return line


def content_length(draw, focus: Focus, size: int) -> bytes:
    """The value of a Content-Length for a body of `size` bytes, or a boundary case."""
    digits = b"%d" % size
    unusual = [b"0" + digits, b"000" + digits, b"0" * 17 + digits, b"0" * 20 + digits]
    unusual += [b"+" + digits, b"-" + digits, b"-0", b"", b"0x" + digits, digits + b".0"]
    unusual += [digits + b", " + digits, digits + b"," + digits, digits + b",", b", " + digits]
    unusual += [digits + b", %d" % (size + 1), digits + b" " + digits, b"%d" % (size + 1)]
    unusual += [b"\xd9\xa1", b"\xb2", b"\xef\xbc\x95", b"1_0", b"1e1", b"five", digits + b"\x00"]
    if size:
        unusual += [b"%d" % (size - 1), b"0" + digits + b", " + digits]
    return focus.pick(draw, "length", [digits], unusual)


TRANSFER_CODINGS = [b"chunked", b"Chunked", b"CHUNKED"]
TRANSFER_CODINGS_UNUSUAL = [b"xchunked", b"chunked, identity", b"identity, chunked", b"gzip"]
TRANSFER_CODINGS_UNUSUAL += [b"gzip, chunked", b"chunked,", b", chunked", b"chunked;q=1", b""]
TRANSFER_CODINGS_UNUSUAL += [b"chunked chunked", b'"chunked"', b"identity", b"chunke"]


def chunked_body(draw, focus: Focus, body: bytes) -> bytes:
    """`body` as chunks, with their sizes, extensions and CRLFs, the last chunk and trailers."""
    cuts = sorted(draw(below(len(body) + 1)) for _ in range(draw(below(4))))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if b > a]
    wire = b""
    for piece in [*pieces, b""]:
        size = len(piece)
        sizes = [b"%x" % size, b"%X" % size, b"0%x" % size, b"%020x" % size]
        unusual = [b"%021x" % size, b"0x%x" % size, b"-%x" % size, b"+%x" % size, b" %x" % size]
        unusual += [b"%x " % size, b"%x\t" % size, b"%x_" % size, b"%d" % (size + 1), b""]
        unusual += [b"%x" % (size + 1), b"\xd9\xa1", b"%xg" % size, b"%x\x00" % size]
        if size:
            unusual += [b"%x" % (size - 1)]
        line = focus.pick(draw, "chunk size", sizes, unusual)
        extensions = [b";a", b";a=b", b';a="x y"', b";", b" ;a", b"; a", b";a=b;c", b";\x01"]
        extensions += [b";\x80", b";a\rb", b";\x00", b";a\tb"]
        line += focus.pick(draw, "chunk ext", [b""], extensions)
        wire += line + focus.pick(draw, "chunk end", [b"\r\n"], [b"\n", b"\r", b"", b" \r\n"])
        if piece:
            ends = [b"\n", b"", b"\r", b"xx", b"\r\n\r\n", b" \r\n"]
            wire += piece + focus.pick(draw, "chunk end", [b"\r\n"], ends)
    # No Content-Length or Transfer-Encoding among the trailers: h11 checks them as if they
    # framed the message, but in a trailer section they frame nothing (RFC 9110 6.5.2).
    for _ in range(focus.pick(draw, "trailers", [0], [1, 2, 3])):
        wire += field_line(draw, focus)
    return wire + focus.pick(draw, "trailers", [b"\r\n"], [b"\n", b"", b" \r\n", b"\r"])


@st.composite
def requests(draw) -> bytes:
    """The bytes of a near-valid request, sometimes followed by the next one."""
    focus = draw(focuses)
    wire = focus.pick(draw, "leading", [b""], [b"\r\n", b"\n", b"\r\n\r\n", b" \r\n", b"\r"])
    line, version = request_line(draw, focus)
    fields = [field_line(draw, focus) for _ in range(draw(below(5)))]
    hosts = focus.pick(draw, "host", [1] if version == b"HTTP/1.1" else [0, 1], [0, 1, 2])
    for _ in range(hosts):
        host = focus.pick(draw, "host", [b"localhost:8080", b""], [b"a b", b"a\x01", b"a,b"])
        fields.insert(draw(below(len(fields) + 1)), field_line(draw, focus, b"Host", host))
    body = draw(BODIES)
    usual_framings = ["none", "length", "chunked"]
    if focus.areas & {"length"}:
        usual_framings = ["length"]
    elif focus.areas & {"coding", "chunk size", "chunk ext", "chunk end", "trailers"}:
        usual_framings = ["chunked"]
    how = focus.pick(draw, "framing", usual_framings, ["both", "lengths", "codings"])
    if how == "none":
        body = b""
    for _ in range({"length": 1, "both": 1, "lengths": 2}.get(how, 0)):
        field = field_line(draw, focus, b"Content-Length", content_length(draw, focus, len(body)))
        fields.insert(draw(below(len(fields) + 1)), field)
    for _ in range({"chunked": 1, "both": 1, "codings": 2}.get(how, 0)):
        coding = focus.pick(draw, "coding", TRANSFER_CODINGS, TRANSFER_CODINGS_UNUSUAL)
        field = field_line(draw, focus, b"Transfer-Encoding", coding)
        fields.insert(draw(below(len(fields) + 1)), field)
    wire += line + b"".join(fields) + focus.pick(draw, "end of line", [b"\r\n", b"\n"], EOLS)
    wire += chunked_body(draw, focus, body) if how in ("chunked", "both", "codings") else body
    if focus.pick(draw, "pipelining", [False], [True]):  # the next request is not this one's
        wire += focus.pick(draw, "pipelining", [b"GET /n HTTP/1.1\r\nHost: h\r\n\r\n"], [b"\0"])
    for _ in range(focus.pick(draw, "bytes", [0], [1, 2])):  # a byte changed, lost or added
        at = draw(below(max(len(wire), 1)))
        new = choose(draw, [b"", *SPECIAL_BYTES, b"0", b"a", b"-"])
        wire = wire[:at] + new + wire[at + draw(below(2)) :]
    return wire


def kind(outcome: Accepted | Refused | str) -> str:
    return {Accepted: "accepted", Refused: "refused"}.get(type(outcome), outcome)


def check_same_verdict(data: bytes) -> str:
    """KLR's verdict on `data` is h11's, or the stricter one the issue's rules give.
    Returns what happened, for the statistics."""
    oracle, klr = h11_verdict(data), klr_verdict(data)
    verdicts = f"\nbytes: {data!r}\nh11: {oracle.outcome!r}\nKLR: {klr!r}"
    if isinstance(klr, Refused):
        assert klr.status in REFUSAL_STATUSES, verdicts
    if isinstance(oracle.outcome, Accepted):
        stricter = stricter_rules(oracle)
        if stricter:
            assert isinstance(klr, Refused), f"KLR must refuse: {stricter}{verdicts}"
            assert klr.status in stricter.values(), f"KLR's status for {stricter}{verdicts}"
            return f"h11 accepted, KLR refused: {', '.join(sorted(stricter))}"
        assert klr == oracle.outcome, verdicts
    else:
        # Refused or incomplete: KLR may still wait for bytes where h11 gives up at once (a
        # first line that is obviously no request line), or the other way round; never accept.
        assert not isinstance(klr, Accepted), verdicts
    return f"h11 {kind(oracle.outcome)}, KLR {kind(klr)}"


@settings(max_examples=4000, deadline=None, derandomize=True, database=None)
@given(requests())
def test_klr_accepts_exactly_what_h11_accepts_and_reads_the_same(data: bytes):
    event(check_same_verdict(data))


HEAD = b"POST / HTTP/1.1\r\nHost: h\r\n"
TE = b"Transfer-Encoding: chunked\r\n"
CHUNKED = HEAD + TE + b"\r\n"
NAMED_BOUNDARIES = {
    "HTTP/2.0": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "HTTP/1.2": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "no version": b"GET /\r\nHost: h\r\n\r\n",
    "two spaces": b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
    "no Host": b"GET / HTTP/1.1\r\n\r\n",
    "leading CRLF": b"\r\n" + HEAD + b"\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: h\n\n",
    "space before colon": HEAD + b"X : a\r\n\r\n",
    "name not a token": HEAD + b"X(Y): a\r\n\r\n",
    "obs-fold": HEAD + b"X: a\r\n b\r\n\r\n",
    "NUL in value": HEAD + b"X: a\x00b\r\n\r\n",
    "CTL in value": HEAD + b"X: a\x01b\x7f\r\n\r\n",
    "obs-text in value": HEAD + b"X: caf\xe9 \x80\xff\r\n\r\n",
    "OWS around value": HEAD + b"X: \t a b \t\r\n\r\n",
    "length": HEAD + b"Content-Length: 5\r\n\r\nhello",
    "length with leading zeros": HEAD + b"Content-Length: 005\r\n\r\nhello",
    "length with a sign": HEAD + b"Content-Length: +5\r\n\r\nhello",
    "length in Arabic-Indic digits": HEAD + b"Content-Length: \xd9\xa1\r\n\r\nx",
    "length listed twice": HEAD + b"Content-Length: 5, 5\r\n\r\nhello",
    "two lengths": HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "two different lengths": HEAD + b"Content-Length: 5\r\nContent-Length: 4\r\n\r\nhello",
    "length and chunked": HEAD + b"Content-Length: 5\r\n" + TE + b"\r\n0\r\n\r\n",
    "Chunked": HEAD + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
    "xchunked": HEAD + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "chunked, identity": HEAD + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "gzip": HEAD + b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    "chunks with an extension": CHUNKED + b"2;a=b\r\nab\r\n0;c\r\n\r\n",
    "chunk size 0x2": CHUNKED + b"0x2\r\nab\r\n0\r\n\r\n",
    "chunk size -1": CHUNKED + b"-1\r\nab\r\n0\r\n\r\n",
    "chunk size and a space": CHUNKED + b"2 \r\nab\r\n0\r\n\r\n",
    "no CRLF after a chunk": CHUNKED + b"2\r\nabXY0\r\n\r\n",
    "trailers": CHUNKED + b"2\r\nab\r\n0\r\nX-T: v\r\nY: w\r\n\r\n",
    "folded trailer": CHUNKED + b"0\r\nX-T: v\r\n w\r\n\r\n",
    "pipelined": HEAD + b"Content-Length: 1\r\n\r\nxGET / HTTP/1.1\r\nHost: h\r\n\r\n",
}


@pytest.mark.parametrize("data", NAMED_BOUNDARIES.values(), ids=NAMED_BOUNDARIES.keys())
def test_the_boundaries_the_issue_names_get_the_same_verdict(data: bytes):
    check_same_verdict(data)
