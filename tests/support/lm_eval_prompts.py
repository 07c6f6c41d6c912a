"""Render prompts with lm-evaluation-harness itself, offline, and print them as JSON.

Runs under the Python of a separate venv with ``lm-eval`` installed. Its tasks load their data with
``datasets.load_dataset(<hub name>)``; here that call reads the local JSON-lines files given instead
(the same raw files nemo-eval prepares from), so no network is needed. Few-shot sampling is seeded
as ``lm_eval.simple_evaluate`` seeds it (``fewshot_random_seed=1234``).

stdin: ``{"task": name, "num_fewshot": n or null, "limit": k, "data_files": {split: path}}``
stdout: ``[{"doc_id", "text", "until", "messages"}, ...]``; ``text`` is what a completions request
sends, ``messages`` what ``--apply_chat_template`` hands the chat template (few-shot collapsed into
one user turn, lm-eval's default).
"""

import json
import sys

request = json.load(sys.stdin)
answer, sys.stdout = sys.stdout, sys.stderr   # lm-eval logs while importing

import datasets  # noqa: E402
import evaluate  # noqa: E402

real_load = datasets.load_dataset


class _UnusedScorer:   # the code tasks load (and try) their scorer from the hub at import; prompts never use it
    def compute(self, **kwargs):
        return {"pass@1": 0.0}, {}


evaluate.load = lambda *args, **kwargs: _UnusedScorer()

import lm_eval.api.task as task_module  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

task_module.datasets.load_dataset = lambda *args, **kwargs: real_load("json", data_files=request["data_files"])

task = list(TaskManager().load([request["task"]])["tasks"].values())[0]
if request.get("num_fewshot") is not None:
    task.set_config(key="num_fewshot", value=request["num_fewshot"])
task.set_fewshot_seed(seed=1234)
task.build_all_requests(limit=request["limit"], rank=0, world_size=1)
instances = sorted(task.instances, key=lambda inst: inst.doc_id)
rendered = []
for instance in instances:
    task.set_fewshot_seed(seed=1234)   # the chat rendering below redraws few-shot examples: replay the draws
    for earlier in instances[:instances.index(instance)]:
        task.fewshot_context(earlier.doc, task.config.num_fewshot or 0)
    messages = json.loads(task.fewshot_context(instance.doc, task.config.num_fewshot or 0, apply_chat_template=True,
                                               chat_template=lambda msgs, **kwargs: json.dumps(msgs)))
    rendered.append({"doc_id": instance.doc_id, "text": instance.args[0], "until": instance.args[1].get("until", []),
                     "messages": messages})
json.dump(rendered, answer)
