"""Run lm-evaluation-harness's own IFEval checker on crafted cases (stdin JSON) and print its verdicts.

Runs under the Python of a separate venv with ``lm-eval`` installed (never nemo-eval's). Punkt's
trained English data (``punkt_tab``) cannot be downloaded offline, so when it is missing, lm-eval's
sentence counting and ``nltk.word_tokenize`` get the same substitute nemo-eval uses (untrained Punkt
plus the abbreviation list passed in the input), and its langdetect gets seed 0 as nemo-eval's does; every
other line of lm-eval's checkers runs as published.

stdin: ``{"abbreviations": [...], "cases": [{"instruction_id", "kwargs", "response", "prompt"?}, ...]}``
stdout: ``[[strict, loose], ...]``
"""

import json
import sys

import nltk
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

request = json.load(sys.stdin)
answer, sys.stdout = sys.stdout, sys.stderr   # lm-eval prints while importing
try:
    nltk.data.find("tokenizers/punkt_tab/english/")
    substitute = False
except LookupError:
    substitute = True
    nltk.download = lambda *args, **kwargs: False   # lm-eval tries to download punkt_tab on import

from lm_eval.tasks.ifeval import instructions_util, utils  # noqa: E402
import langdetect  # noqa: E402

# The reference leaves langdetect unseeded, so its verdict on a short or mixed text can change between runs;
# seed it as nemo-eval does (seed 0), so that the comparison is of the checkers, not of two random draws.
langdetect.DetectorFactory.seed = 0

if substitute:
    params = PunktParameters()
    params.abbrev_types = set(request["abbreviations"])
    punkt = PunktSentenceTokenizer(params)
    words = NLTKWordTokenizer()
    instructions_util.count_sentences = lambda text: len(punkt.tokenize(text))
    nltk.word_tokenize = lambda text, *a, **k: [t for s in punkt.tokenize(text) for t in words.tokenize(s)]

verdicts = []
for case in request["cases"]:
    item = utils.InputExample(key=0, instruction_id_list=[case["instruction_id"]], prompt=case.get("prompt", ""),
                              kwargs=[case["kwargs"]])
    strict = utils.test_instruction_following_strict(item, case["response"]).follow_instruction_list[0]
    loose = utils.test_instruction_following_loose(item, case["response"]).follow_instruction_list[0]
    verdicts.append([bool(strict), bool(loose)])
json.dump({"verdicts": verdicts, "substitute_punkt": substitute}, answer)
