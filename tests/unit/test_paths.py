"""api_path and check_path: ids stay inside their own segment; no path can leave the API's tree."""

from __future__ import annotations

import pytest

from flatfile_jobs._paths import api_path, check_path


@pytest.mark.parametrize(
    ("segments", "path"),
    [
        (("jobs", "us_jb_1", "ack"), "/jobs/us_jb_1/ack"),
        (("jobs", "../../events"), "/jobs/..%2F..%2Fevents"),
        (("jobs", "x/../../spaces/us_sp_1#"), "/jobs/x%2F..%2F..%2Fspaces%2Fus_sp_1%23"),
        (("jobs", "../sheets/us_sh_1?a="), "/jobs/..%2Fsheets%2Fus_sh_1%3Fa%3D"),
        (("jobs", "%2e%2e"), "/jobs/%252e%252e"),
        (("jobs", "a b\\c\n"), "/jobs/a%20b%5Cc%0A"),
        (("jobs", "é"), "/jobs/%C3%A9"),
        (("jobs", "...", "ack"), "/jobs/.../ack"),
    ],
)
def test_api_path_encodes_every_segment_whole(segments: tuple[str, ...], path: str) -> None:
    """api_path percent-encodes each segment so / ? # % and spaces stay inside it."""
    assert api_path(*segments) == path


@pytest.mark.parametrize("segment", ["", ".", "..", "x\ud800"])
def test_api_path_refuses_dot_empty_and_broken_segments(segment: str) -> None:
    """'.', '..', empty segments and lone surrogates cannot become a path segment."""
    with pytest.raises(ValueError, match=r"segment|Unicode"):
        api_path("jobs", segment, "ack")


@pytest.mark.parametrize(
    "path", ["/events", "/jobs/us_jb_1/ack", "/jobs/..%2F..%2Fevents/ack", "/jobs/.../x"]
)
def test_check_path_lets_encoded_paths_through(path: str) -> None:
    """Paths api_path writes, and plain ones, pass."""
    check_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/../x",
        "/jobs/%2E%2e/x",
        "/./jobs",
        "/jobs/x?y",
        "/jobs/x#y",
        "//host/x",
        "jobs",
        "/jobs/",
        "/a b",
        "",
    ],
)
def test_check_path_refuses_what_could_change_a_urls_meaning(path: str) -> None:
    """Dot segments (encoded too), queries, fragments, empty segments, spaces and relative paths are refused."""
    with pytest.raises(ValueError, match="segment"):
        check_path(path)
