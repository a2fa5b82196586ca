"""Every input of the fuzzer's corpus (`fuzz/corpus/wire/`: the seeds made from real boto3
requests, and any input a fuzzing run found and that was fixed) answered as the fuzzer
demands: never a 5xx, never an exception, never slower than a second."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.wire import OPERATIONS, TestOneInput

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus" / "wire"
CASES = sorted(CORPUS.glob("*"))


def test_the_corpus_has_a_seed_of_every_operation() -> None:
    operations = {OPERATIONS[case.read_bytes()[0]][1] for case in CASES}
    assert operations >= {op[1] for op in OPERATIONS} - {"NoSuchOperation"}, operations


@pytest.mark.parametrize("case", CASES, ids=[c.name[:12] for c in CASES])
def test_a_corpus_input_is_answered_as_the_fuzzer_demands(case: Path) -> None:
    TestOneInput(case.read_bytes())
