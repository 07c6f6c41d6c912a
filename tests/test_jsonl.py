"""JSONL writing stays valid UTF-8 whatever the model produced."""

import json

from nemo_eval.jsonl import encode_json, read_jsonl, write_jsonl_atomic


def test_lone_surrogates_are_escaped_not_fatal(tmp_path):
    rows = [{"generation": "bad \ud800 text"}, {"generation": "fine ’ text"}]
    write_jsonl_atomic(tmp_path / "o.jsonl", rows)
    assert list(read_jsonl(tmp_path / "o.jsonl")) == rows
    assert "’" in encode_json(rows[1])  # normal text stays readable, not \u-escaped
    assert json.loads(encode_json(rows[0])) == rows[0]
