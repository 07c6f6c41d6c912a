"""Tokens, time and money of a generation run: the estimate before it starts, the totals after.

Counts come from each response's ``usage`` (``prompt_tokens``, ``completion_tokens`` and, where the
server reports them, ``completion_tokens_details.reasoning_tokens``), recorded on every output line as
``num_input_tokens``, ``num_generated_tokens``, ``num_reasoning_tokens``, with the request's wall time
``request_seconds`` and ``cached: true`` for answers served by the response cache (they cost nothing).
Prices are per million tokens (``++server.price_per_million_input/output``), in any currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from nemo_eval.inference.request_gate import CHARS_PER_TOKEN


@dataclass
class Prices:
    """Per million tokens; None = unknown."""

    input: Optional[float] = None
    output: Optional[float] = None

    @property
    def known(self) -> bool:
        return self.input is not None or self.output is not None

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        return ((self.input or 0.0) * input_tokens + (self.output or 0.0) * output_tokens) / 1e6

    def as_dict(self) -> dict[str, Optional[float]]:
        return {"input": self.input, "output": self.output}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def usage_totals(rows: Iterable[dict[str, Any]], prices: Optional[Prices] = None) -> dict[str, Any]:
    """Totals over output lines: ``answered`` (lines with a generation), ``input_tokens``, ``generated_tokens``,
    ``reasoning_tokens``, ``cached`` (answers from the cache, not billed), ``request_seconds``, and ``cost``
    (billed lines only) when prices are known."""
    totals = {"answered": 0, "input_tokens": 0, "generated_tokens": 0, "reasoning_tokens": 0, "cached": 0,
              "request_seconds": 0.0}
    billed_in = billed_out = 0.0
    for row in rows:
        if row.get("generation") is None:
            continue
        totals["answered"] += 1
        tokens_in, tokens_out = _number(row.get("num_input_tokens")), _number(row.get("num_generated_tokens"))
        totals["input_tokens"] += int(tokens_in)
        totals["generated_tokens"] += int(tokens_out)
        totals["reasoning_tokens"] += int(_number(row.get("num_reasoning_tokens")))
        totals["request_seconds"] += _number(row.get("request_seconds"))
        if row.get("cached"):
            totals["cached"] += 1
        else:
            billed_in += tokens_in
            billed_out += tokens_out
    totals["request_seconds"] = round(totals["request_seconds"], 2)
    if prices is not None and prices.known:
        totals["cost"] = round(prices.cost(billed_in, billed_out), 6)
    return totals


def estimate_text(items: list[dict[str, Any]], prompt_chars: list[int], max_tokens: Optional[int],
                  prices: Prices) -> str:
    """What a run is about to cost: prompt tokens estimated from characters, output at most ``max_tokens`` each."""
    input_tokens = sum(prompt_chars) / CHARS_PER_TOKEN
    most_output = (max_tokens or 0) * len(items)
    low, high = prices.cost(input_tokens, 0), prices.cost(input_tokens, most_output)
    return (f"{len(items)} items to send: about {input_tokens:,.0f} prompt tokens (characters / {CHARS_PER_TOKEN}) "
            f"and at most {most_output:,} generated; estimated cost {low:,.4f} to {high:,.4f} "
            "(prompts only, to every item using max_tokens)")


def totals_text(totals: dict[str, Any]) -> str:
    text = (f"{totals['answered']} answered: {totals['input_tokens']:,} prompt + {totals['generated_tokens']:,} "
            f"generated tokens")
    if totals["reasoning_tokens"]:
        text += f" ({totals['reasoning_tokens']:,} reasoning)"
    if totals["cached"]:
        text += f", {totals['cached']} from the response cache (not billed)"
    if "cost" in totals:
        text += f"; cost {totals['cost']:,.4f}"
    return text
