"""The file size limit at its boundary, where hand-made mutants of pipeline/read.py and
pipeline/safety.py showed it untested (the existing test uses a file 20 times the limit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_fill import errors, make_return, read_one

from pipeline import safety


def test_a_file_of_exactly_the_limit_is_read_one_byte_more_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mutants: `st.st_size > 2 * MAX_FILE_BYTES` (read.py, before opening) and
    # `len(data) > 2 * MAX_FILE_BYTES` (safety.py, on the bytes read)
    path = make_return(tmp_path / "inbox", "annex4_progress")
    size = path.stat().st_size
    monkeypatch.setattr(safety, "MAX_FILE_BYTES", size)
    ret = read_one(path)
    assert ret.status == "accepted", errors(ret)
    monkeypatch.setattr(safety, "MAX_FILE_BYTES", size - 1)
    ret = read_one(path)
    assert errors(ret) == [("file-too-large", "")]
    assert ret.sha256 == ""  # refused on its size, before a byte of it was read


def test_bytes_one_past_the_limit_are_refused_by_the_container_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the check on the bytes themselves (a file that grew between stat and read)
    monkeypatch.setattr(safety, "MAX_FILE_BYTES", 100)
    with pytest.raises(safety.Refused) as caught:
        safety.check_bytes(b"PK\x03\x04" + bytes(97))
    assert caught.value.code == "file-too-large"
