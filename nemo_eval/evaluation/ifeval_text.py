"""Text measurements the IFEval checkers need: words, sentences, word tokens, language.

The reference implementation (google-research ``instruction_following_eval``, copied by
lm-evaluation-harness) counts words as ``\\w+`` runs of nltk's ``RegexpTokenizer`` (the ``regex`` engine's
word characters, which include combining marks), sentences with NLTK's Punkt model for English
and word tokens with ``nltk.word_tokenize``, and detects languages with ``langdetect``. Those two
libraries are the optional extra ``ifeval`` (``pip install 'nemo-eval[ifeval]'``); without them the
checkers that need them stop with one line saying what to install.

Differences from the reference, on purpose:

- Punkt's trained English parameters (``punkt_tab``) are NLTK data downloaded at run time, which
  offline machines cannot do. When they are installed (``nltk.data.find`` finds them) they are used, so
  counts equal the reference's; otherwise Punkt runs with no trained parameters plus a fixed list of
  common English abbreviations (:data:`ABBREVIATIONS`). The two agree on ordinary prose; they can
  differ on abbreviations outside the list and on rare collocations.
- ``langdetect`` is random unless seeded; the reference does not seed it, so a short or mixed response
  can get a different verdict from run to run. We use our own detector factory with seed 0, so
  verdicts are reproducible (and may differ from one particular reference run on such responses).
"""

from __future__ import annotations

import functools
from typing import Any

from nemo_eval.errors import UserError

INSTALL = "pip install 'nemo-eval[ifeval]'"

# Lower-case, without the final period, as Punkt stores abbreviation types.
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al inc ltd co corp llc dept univ assn bros gen gov col lt sgt capt cmdr
adm rep sen rev hon pres no nos vol vols fig figs eq eqs ed eds p pp ch sec art approx est min max dist ave blvd rd apt
jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun a.m p.m u.s u.k u.n u.s.a
e.u d.c ph.d m.d b.a m.a b.sc m.sc ll.b op ca c viz
""".split())

def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise UserError(f"IFEval grading needs the Python package {module!r}: {INSTALL}") from None


def require_libraries() -> None:
    """One-line error (what to install) unless the extra ``ifeval``'s libraries import."""
    for module in ("nltk", "langdetect"):
        _require(module)


@functools.lru_cache(maxsize=1)
def _word_runs() -> Any:
    _require("nltk")
    from nltk.tokenize import RegexpTokenizer

    return RegexpTokenizer(r"\w+")


def count_words(text: str) -> int:
    """Runs of word characters, counted by the reference's own ``nltk`` ``RegexpTokenizer(r"\\w+")``.

    Not the standard library's ``\\w``: nltk matches with the ``regex`` engine, whose word characters
    include combining marks (Devanagari, Thai and Arabic vowel signs, decomposed accents), so
    ``re`` would split those words where the reference does not.
    """
    return len(_word_runs().tokenize(text))


@functools.lru_cache(maxsize=1)
def sentence_tokenizer() -> Any:
    """NLTK Punkt for English: the trained parameters when installed, else untrained plus :data:`ABBREVIATIONS`."""
    nltk = _require("nltk")
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        from nltk.tokenize import PunktTokenizer

        return PunktTokenizer("english")
    except (LookupError, ImportError, OSError, ValueError):
        params = PunktParameters()
        params.abbrev_types = set(ABBREVIATIONS)
        return PunktSentenceTokenizer(params)


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (Punkt)."""
    return sentence_tokenizer().tokenize(text)


def count_sentences(text: str) -> int:
    return len(sentences(text))


@functools.lru_cache(maxsize=1)
def _word_tokenizer() -> Any:
    _require("nltk")
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokens(text: str) -> list[str]:
    """``nltk.word_tokenize``: Punkt sentences, each split by NLTK's Treebank-style word tokenizer."""
    tokenizer = _word_tokenizer()
    return [token for sentence in sentences(text) for token in tokenizer.tokenize(sentence)]


@functools.lru_cache(maxsize=1)
def _language_factory() -> Any:
    _require("langdetect")
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code ``langdetect`` finds for ``text`` (seeded), or None when it cannot tell
    (no letters); the reference counts a text it cannot tell as following the instruction."""
    from langdetect.lang_detect_exception import LangDetectException

    detector = _language_factory().create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:
        return None
