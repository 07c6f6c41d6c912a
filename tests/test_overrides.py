"""Overrides: plain values take a fast path without Hydra's grammar and give what the grammar gives."""

from __future__ import annotations

import pytest

from nemo_eval import overrides
from nemo_eval.evaluation.evaluate import EvaluateConfig
from nemo_eval.inference.config import GenerateConfig

PLAIN = [
    ["++benchmark=gsm8k", "++output_dir=/tmp/out dir/x".replace(" ", "_"), "++server.base_url=http://127.0.0.1:8000/v1",
     "++server.model=test-model", "++max_samples=10", "++inference.temperature=0.7", "++inference.random_seed=0",
     "++inference.tokens_to_generate=384", "++dry_run=true", "++server.max_retries=0"],
    ["++benchmark=math-500", "++server.model=null", "++dry_run=False", "++inference.top_p=1.0", "+max_samples=-1"],
]
PLAIN_EVALUATE = [["++timeout=10", "++max_concurrency=4", "++regrade=TRUE", "++sandbox_address=http://127.0.0.1:6000"]]


def _both(cls, items, monkeypatch):
    fast = overrides.parse_overrides(cls, items)
    monkeypatch.setattr(overrides, "_plain_override", lambda raw: None)    # every value through Hydra's grammar
    return fast, overrides.parse_overrides(cls, items)


@pytest.mark.parametrize("items", PLAIN)
def test_plain_values_match_hydras_reading(items, monkeypatch):
    fast, hydra = _both(GenerateConfig, items, monkeypatch)
    assert fast == hydra


@pytest.mark.parametrize("items", PLAIN_EVALUATE)
def test_plain_evaluate_values_match_hydras_reading(items, monkeypatch):
    fast, hydra = _both(EvaluateConfig, items, monkeypatch)
    assert fast == hydra


@pytest.mark.parametrize("raw", ["++inference.stop=[a,b]", "++server.model='x y'", "++server.model=1e3",
                                 "++server.model=7b", "++server.model=inf", "++server.model=${oc.env:HOME}",
                                 "++server.model=a\\,b", "++server.model=1_000"])
def test_anything_else_goes_through_hydras_grammar(raw):
    assert overrides._plain_override(raw) is None
