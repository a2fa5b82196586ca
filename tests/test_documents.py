"""Reading catalog files: the fast YAML builder gives what PyYAML's safe loader gives."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from marketmeter.documents import SAFE_LOADER, load_yaml, read_document

EDGES = [
    "",
    "~",
    "null\n",
    "a: 1\nb: 1_000\nc: 0x1f\nd: 017\ne: 1.5e3\nf: .inf\ng: -.Inf\nh: .nan\n",
    "yes: no\non: off\nTrue: FALSE\ny: n\n",
    "when: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\n",
    "quoted: '123456789012'\ndouble: \"yes\"\nplain: 123456789012\n",
    "empty:\nnested:\n  - a\n  - [1, 2, {x: y}]\n  - {}\n  - []\n",
    "block: |\n  line one\n  line two\nfolded: >\n  folded\n  text\n",
    "? complex\n: value\n",
    "numbers: [0, -1, +1, 1:30, 3.14, 1e3, 0b101, 0o17]\n",
    'accounts:\n  - account_id: "111122223333"\n    access_keys: []\n',
    "key: value # a comment\n# only a comment\n",
]
LEFT_TO_PYYAML = [
    "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
    "a: &x [1, 2]\nb: *x\n",
    "tagged: !!str 123\n",
]
REFUSED = ["? [1, 2]\n: complex key\n", "--- 1\n--- 2\n", "a: [1, 2\nb: 3\n"]


def pyyaml(text: str) -> Any:
    return yaml.load(text, Loader=SAFE_LOADER)


@pytest.mark.parametrize("text", EDGES + LEFT_TO_PYYAML)
def test_the_same_values_as_pyyaml(text: str) -> None:
    assert repr(load_yaml(text)) == repr(pyyaml(text))  # repr: nan, types, key order


@pytest.mark.parametrize("text", REFUSED)
def test_what_pyyaml_refuses_is_refused_with_its_error(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as theirs:
        pyyaml(text)
    with pytest.raises(yaml.YAMLError) as ours:
        load_yaml(text)
    assert str(ours.value) == str(theirs.value)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "No", "on", "~", "null", "0x10", "1_0", "12:30", "2002-12-14", ""]),
    st.dates(min_value=datetime.date(1900, 1, 1)),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([None, True, False]))
def test_any_dumped_document_reads_back_as_pyyaml_reads_it(data: Any, flow: bool | None) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert repr(load_yaml(text)) == repr(pyyaml(text))


def test_json_files_are_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"accounts": [{"account_id": "111122223333"}], "n": 1.5}')
    assert read_document(path) == {"accounts": [{"account_id": "111122223333"}], "n": 1.5}


def test_yaml_flow_style_that_is_not_json_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("{accounts: [{account_id: '111122223333'}]}")
    assert read_document(path) == {"accounts": [{"account_id": "111122223333"}]}
