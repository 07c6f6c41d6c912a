"""The 25 IFEval instruction checkers: ``CHECKERS[instruction_id](response, kwargs) -> followed?``.

Written from the paper's definitions (Zhou et al. 2023, appendix table of the 25 instructions) and the
behaviour of the published checker (google-research ``instruction_following_eval``, the same code
in lm-evaluation-harness's ``ifeval`` task), which decides every edge case below:

- counts compare with the instruction's ``relation``: ``"less than"`` is ``<``, ``"at least"`` is ``>=``;
- keywords are found case-insensitively as substrings (``keywords:existence``, ``keywords:frequency``),
  forbidden words as whole words; a letter's frequency counts it in the lower-cased response;
- a placeholder is ``[...]`` within one line; a highlight is ``*text*`` or ``**text**`` within one
  line (both patterns are counted, as the reference does, so ``*a* **b**`` holds two);
  a bullet is a line starting (after spaces) with ``* `` (one star and not two) or ``-``;
- paragraphs are separated by ``***`` (``number_paragraphs``) or by a blank line
  (``nth_paragraph_first_word``); sections start with the splitter word and a number
  (``SECTION 1``); two responses are separated by ``******``;
- a title is ``<<...>>`` on one line; JSON may be wrapped in a ```` ```json ```` fence;
- a postscript is a line with ``P.S.`` (``P.P.S`` for that marker; case-insensitive);
- case and language checks use ``str.isupper``/``islower`` and ``langdetect`` (a text in which no
  language can be detected counts as following, as in the reference).

Every check runs in time linear in the response (no regular expression here can backtrack
catastrophically; the reference's patterns for bullets, placeholders and titles are quadratic on
adversarial input, so those are scanners with the same results). One known difference: for
``keywords:letter_frequency`` with a letter outside a-z (two prompts ask for ``#`` and ``!``), the
reference silently replaces it by a random letter; we count the character the prompt names.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from nemo_eval.evaluation import ifeval_text

Check = Callable[[str, dict[str, Any]], bool]
RELATIONS = ("less than", "at least")
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def compare(count: int, relation: str, threshold: int) -> bool:
    """``count < threshold`` for "less than", ``count >= threshold`` for "at least"."""
    if relation == "less than":
        return count < threshold
    if relation == "at least":
        return count >= threshold
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


def _count_ignorecase(needle: str, text: str) -> int:
    return sum(1 for _ in re.finditer(re.escape(needle), text, re.I))


# ---- keywords
def keyword_existence(response: str, kw: dict[str, Any]) -> bool:
    return all(re.search(re.escape(word), response, re.I) for word in kw["keywords"])


def keyword_frequency(response: str, kw: dict[str, Any]) -> bool:
    return compare(_count_ignorecase(kw["keyword"].strip(), response), kw["relation"], kw["frequency"])


def forbidden_words(response: str, kw: dict[str, Any]) -> bool:
    return not any(re.search(rf"\b{re.escape(word)}\b", response, re.I) for word in kw["forbidden_words"])


def letter_frequency(response: str, kw: dict[str, Any]) -> bool:
    letter = kw["letter"].strip().lower()
    return compare(response.lower().count(letter), kw["let_relation"], kw["let_frequency"])


# ---- language and case
def response_language(response: str, kw: dict[str, Any]) -> bool:
    found = ifeval_text.detect_language(response)
    return found is None or found == kw["language"]


def english_capital(response: str, kw: dict[str, Any]) -> bool:
    if not response.isupper():
        return False
    found = ifeval_text.detect_language(response)
    return found is None or found == "en"


def english_lowercase(response: str, kw: dict[str, Any]) -> bool:
    if not response.islower():
        return False
    found = ifeval_text.detect_language(response)
    return found is None or found == "en"


def capital_word_frequency(response: str, kw: dict[str, Any]) -> bool:
    capitals = sum(token.isupper() for token in ifeval_text.word_tokens(response))
    return compare(capitals, kw["capital_relation"], kw["capital_frequency"])


# ---- length
def number_words(response: str, kw: dict[str, Any]) -> bool:
    return compare(ifeval_text.count_words(response), kw["relation"], kw["num_words"])


def number_sentences(response: str, kw: dict[str, Any]) -> bool:
    return compare(ifeval_text.count_sentences(response), kw["relation"], kw["num_sentences"])


def number_paragraphs(response: str, kw: dict[str, Any]) -> bool:
    parts = re.split(r"\s?\*\*\*\s?", response)
    count = len(parts)
    for index, part in enumerate(parts):
        if not part.strip():
            if index in (0, len(parts) - 1):
                count -= 1
            else:
                return False    # an empty paragraph between two dividers
    return count == kw["num_paragraphs"]


def nth_paragraph_first_word(response: str, kw: dict[str, Any]) -> bool:
    parts = response.split("\n\n")
    count = sum(1 for part in parts if part.strip())
    nth = kw["nth_paragraph"]
    if nth > count:
        return False
    paragraph = parts[nth - 1].strip()     # counted without empty ones, indexed with them, as the reference does
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    first = ""
    for char in word:
        if char in ".,?!'\"":
            break
        first += char.lower()
    return count == kw["num_paragraphs"] and first == kw["first_word"].lower()


# ---- detectable content and format
def count_placeholders(response: str) -> int:
    """Non-overlapping ``[...]`` spans that do not cross a newline."""
    count = 0
    for line in response.split("\n"):
        start = line.find("[")
        while start >= 0:
            end = line.find("]", start + 1)
            if end < 0:
                break
            count += 1
            start = line.find("[", end + 1)
    return count


def number_placeholders(response: str, kw: dict[str, Any]) -> bool:
    return count_placeholders(response) >= kw["num_placeholders"]


def postscript(response: str, kw: dict[str, Any]) -> bool:
    marker = kw["postscript_marker"].strip()
    text = response.lower()
    if marker == "P.P.S":
        return re.search(r"p\.\s?p\.\s?s", text) is not None
    if marker == "P.S.":
        return re.search(r"p\.\s?s\.", text) is not None
    return marker.lower() in text


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _count_line_items(text: str, item: Callable[[str, int], int]) -> int:
    """Matches of ``^\\s*<item>.*$`` (MULTILINE); ``item(text, p)`` is how many characters an item starting
    at ``p`` takes (0: none starts there).

    ``\\s*`` may run over blank lines, as in the regular expression; a start whose whitespace run fails
    makes every line start inside that run fail too, so the scan resumes after it (linear time).
    """
    count, start, size = 0, 0, len(text)
    while start <= size:
        p = start
        while p < size and text[p].isspace():
            p += 1
        taken = item(text, p) if p < size else 0
        if taken:
            count += 1
            resume = _line_end(text, p + taken)
        else:
            resume = p
        following = text.find("\n", resume)
        if following < 0:
            break
        start = following + 1
    return count


def _star_item(text: str, p: int) -> int:
    return 2 if text[p] == "*" and p + 1 < len(text) and text[p + 1] != "*" else 0


def count_bullets(response: str) -> int:
    """Lines that start (after whitespace) with ``*`` followed by anything but ``*`` (a newline too, as
    ``[^*]`` matches it), plus those starting with ``-``."""
    return _count_line_items(response, _star_item) + _count_line_items(response, lambda t, p: int(t[p] == "-"))


def number_bullet_lists(response: str, kw: dict[str, Any]) -> bool:
    return count_bullets(response) == kw["num_bullets"]


def constrained_response(response: str, kw: dict[str, Any]) -> bool:
    text = response.strip()
    return any(option in text for option in CONSTRAINED_RESPONSES)


def count_highlights(response: str) -> int:
    single = [m for m in re.findall(r"\*[^\n*]*\*", response) if m.strip("*").strip()]
    double = [m for m in re.findall(r"\*\*[^\n*]*\*\*", response) if m[2:-2].strip()]
    return len(single) + len(double)


def number_highlighted_sections(response: str, kw: dict[str, Any]) -> bool:
    return count_highlights(response) >= kw["num_highlights"]


def multiple_sections(response: str, kw: dict[str, Any]) -> bool:
    splitter = kw["section_spliter"].strip()
    return len(re.split(rf"\s?{re.escape(splitter)}\s?\d+\s?", response)) - 1 >= kw["num_sections"]


def json_format(response: str, kw: dict[str, Any]) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):   # one after the other, as the reference does
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except (ValueError, RecursionError):   # nested too deep to parse: the reference crashes, we say "not JSON"
        return False
    return True


def has_title(response: str) -> bool:
    """A ``<<title>>`` with some text in it on one line (from the line's first ``<<`` to its last ``>>``)."""
    for line in response.split("\n"):
        start = line.find("<<")
        end = line.rfind(">>")
        if start >= 0 and end >= start + 3 and line[start:end + 2].lstrip("<").rstrip(">").strip():
            return True
    return False


def title(response: str, kw: dict[str, Any]) -> bool:
    return has_title(response)


# ---- combination, start/end, punctuation
def two_responses(response: str, kw: dict[str, Any]) -> bool:
    parts = response.split("******")
    kept = []
    for index, part in enumerate(parts):
        if part.strip():
            kept.append(part)
        elif index not in (0, len(parts) - 1):
            return False
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


def repeat_prompt(response: str, kw: dict[str, Any]) -> bool:
    return response.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower())


def end_checker(response: str, kw: dict[str, Any]) -> bool:
    return response.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower())


def quotation(response: str, kw: dict[str, Any]) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


def no_comma(response: str, kw: dict[str, Any]) -> bool:
    return "," not in response


CHECKERS: dict[str, Check] = {
    "keywords:existence": keyword_existence,
    "keywords:frequency": keyword_frequency,
    "keywords:forbidden_words": forbidden_words,
    "keywords:letter_frequency": letter_frequency,
    "language:response_language": response_language,
    "length_constraints:number_sentences": number_sentences,
    "length_constraints:number_paragraphs": number_paragraphs,
    "length_constraints:number_words": number_words,
    "length_constraints:nth_paragraph_first_word": nth_paragraph_first_word,
    "detectable_content:number_placeholders": number_placeholders,
    "detectable_content:postscript": postscript,
    "detectable_format:number_bullet_lists": number_bullet_lists,
    "detectable_format:constrained_response": constrained_response,
    "detectable_format:number_highlighted_sections": number_highlighted_sections,
    "detectable_format:multiple_sections": multiple_sections,
    "detectable_format:json_format": json_format,
    "detectable_format:title": title,
    "combination:two_responses": two_responses,
    "combination:repeat_prompt": repeat_prompt,
    "startend:end_checker": end_checker,
    "startend:quotation": quotation,
    "change_case:capital_word_frequency": capital_word_frequency,
    "change_case:english_capital": english_capital,
    "change_case:english_lowercase": english_lowercase,
    "punctuation:no_comma": no_comma,
}
