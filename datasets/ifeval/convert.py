"""IFEval (541 prompts): key becomes id, prompt the problem; the instruction ids and their arguments are kept.

``kwargs`` keeps, per instruction, only the arguments that are set (upstream rows list none as null).
"""

from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / "input_data.jsonl"):
        if len(row["instruction_id_list"]) != len(row["kwargs"]):
            raise ValueError(f"ifeval key {row['key']}: {len(row['instruction_id_list'])} instructions but "
                             f"{len(row['kwargs'])} argument sets")
        yield {
            "id": str(row["key"]),
            "problem": row["prompt"],
            "instruction_id_list": list(row["instruction_id_list"]),
            "kwargs": [{k: v for k, v in args.items() if v is not None} for args in row["kwargs"]],
        }
