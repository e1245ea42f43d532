"""The batch (polars) normalization of caller numbers equals the per-number one, so a
caller hashes to the same key whichever path saw it (replay, adapters, dead letters)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.pii import CallerHasher, mask_normalized, mask_number, normalize_number, normalized_numbers

SPELLINGS = st.one_of(
    st.text(alphabet="+0123456789 -().\t٣", max_size=24),  # incl. an Arabic-Indic digit
    st.text(max_size=24),
    st.builds(
        lambda d, sep: "+" + sep.join(d),
        st.lists(st.text("0123456789", min_size=1, max_size=4)),
        st.sampled_from([" ", "-", ""]),
    ),
)


@settings(max_examples=400, derandomize=True)
@given(st.lists(SPELLINGS, max_size=20))
def test_batch_normalization_equals_the_per_number_one(numbers: list[str]) -> None:
    got = pl.DataFrame({"c": numbers}, schema={"c": pl.String}).select(normalized_numbers(pl.col("c"))).to_series()
    assert got.to_list() == [normalize_number(n) for n in numbers]


def test_known_spellings() -> None:
    numbers = [" +86 138-0000-0001", "+8613800000001", "(0)20 7946 0018", "12", None]
    got = pl.DataFrame({"c": numbers}).select(normalized_numbers(pl.col("c"))).to_series().to_list()
    assert got == ["+8613800000001", "+8613800000001", "02079460018", "12", None]
    assert [mask_normalized(n) for n in got[:4]] == ["+86*********01", "+86*********01", "*********18", "**"]
    assert mask_number(" +86 138-0000-0001") == "+86*********01"
    h = CallerHasher(b"k")
    assert h.key_of(" +86 138-0000-0001") == h.key_of_normalized("+8613800000001") == h.key_of("+8613800000001")
