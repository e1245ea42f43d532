"""Dead letters' raw text: the caller is replaced by its hash in every spelling."""

from __future__ import annotations

import json

import pytest

from pipeline.core.pii import mask_phone_like, scrub_raw

H = "hmac:0123456789abcdef0123456789abcdef"
KEY = H.removeprefix("hmac:")


@pytest.mark.parametrize(
    ("raw", "caller", "expected"),
    [
        ('{"at":"x","caller":[ "+8613800000001" ]}', '["+8613800000001"]', {"at": "x", "caller": H}),
        ('{"at":"x","caller":"\\u002b8613800000002"}', "+8613800000002", {"at": "x", "caller": H}),
        ('{"at":"x","caller": 8613800000003}', "8613800000003", {"at": "x", "caller": H}),
        ('{"caller": {"n": "+8613800000004"}, "k": 1}', '{"n":"+8613800000004"}', {"caller": H, "k": 1}),
        (  # a contact record: the number is under another name
            '{"ContactId":"c","CustomerEndpoint":{"Address":"+8613800000005","Type":"TELEPHONE_NUMBER"}}',
            "+8613800000005",
            {"ContactId": "c", "CustomerEndpoint": {"Address": H, "Type": "TELEPHONE_NUMBER"}},
        ),
    ],
)
def test_json_objects_stay_json_with_the_caller_hashed(raw: str, caller: str, expected: dict[str, object]) -> None:
    assert json.loads(scrub_raw(raw, caller, KEY) or "") == expected


@pytest.mark.parametrize(
    ("raw", "caller", "expected"),
    [
        ("1700000010|1.1|q|NONE|ENTERQUEUE||5551|1", "5551", f"##########|1.1|q|NONE|ENTERQUEUE||{H}|1"),
        ("AA0101\t1\t12345\t2\tPS\t990203", "12345", f"AA0101\t1\t{H}\t2\tPS\t990203"),
        ("x,+86 138 0000 5678,55512", "+86 138 0000 5678", "x,#################,55512"),
        ("[1, 2]", None, "[1, 2]"),
    ],
)
def test_other_text_is_masked_and_the_caller_field_hashed(raw: str, caller: str | None, expected: str) -> None:
    assert scrub_raw(raw, caller, KEY if caller else None) == expected


def test_tabs_part_digit_runs() -> None:
    assert mask_phone_like("123\t4567\t+86 138 0000 5678") == "123\t4567\t#################"
