"""Code execution during generation: the model writes code, the sandbox runs it, the model goes on.

With a prompt config that declares ``code_execution`` markers (e.g. ```` ```python\\n ```` ...
```` ```\\n```` and ```` ```output\\n ```` ... ```` ```\\n````) and ``++code_execution.enabled=true``:

1. generate with the code-end marker as an extra stop string;
2. if the text now ends inside an unclosed code block, close it, run the code in the sandbox, and
   append the (truncated) output or error between the output markers;
3. continue generating from the whole text so far (completions endpoint), until the model stops
   without leaving code to run, the token budget is spent, or ``max_executions`` ran (after which
   code is no longer executed and the model finishes on its own).

The code-end marker can also close another block or open a bare fence. When the server reports
which stop string ended a generation (``stop_reason``, as vLLM does) such a false stop is undone and
generation continues; servers that do not report it end the generation there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Optional

from nemo_eval.inference.openai_api import Completion, OpenAICompatClient
from nemo_eval.prompts.config import CodeExecutionMarkers
from nemo_eval.sandbox import SandboxClient


@dataclass
class CodeRunResult:
    text: str
    finish_reason: Optional[str]
    num_generated_tokens: int
    num_code_executions: int


def pending_code(text: str, markers: CodeExecutionMarkers) -> Optional[str]:
    """The code of a block opened at the end of ``text`` and not closed yet, else None."""
    start = text.rfind(markers.code_begin)
    if start < 0:
        return None
    code = text[start + len(markers.code_begin):]
    if markers.code_end.strip() and markers.code_end.strip() in code:
        return None
    return code


def format_output(result: dict[str, Any], max_chars: int) -> str:
    """What the model sees of one execution: stdout, then stderr's last line on failure, or a timeout note."""
    if result.get("process_status") == "timeout":
        return "Execution timed out.\n"
    text = result.get("stdout") or ""
    stderr = (result.get("stderr") or "").strip()
    if result.get("return_code") not in (0, None) and stderr:
        text += stderr.splitlines()[-1]
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n<output cut at {max_chars} characters>"
    return text if text.endswith("\n") or not text else text + "\n"


async def generate_with_code(client: OpenAICompatClient, sandbox: SandboxClient, body: dict[str, Any],
                             markers: CodeExecutionMarkers, max_executions: int, timeout: float,
                             max_output_chars: int) -> CodeRunResult:
    """Run the generate / execute / continue loop for one prompt (``body`` is a completions request)."""
    prompt = body["prompt"]
    budget = int(body.get("max_tokens") or 0)
    base_stop = list(body.get("stop") or [])
    text, tokens, executions = "", 0, 0
    completion: Optional[Completion] = None
    for _ in range(4 * max_executions + 16):  # false stops (below) cannot loop forever
        can_execute = executions < max_executions
        request = dict(body, prompt=prompt + text, max_tokens=max(budget - tokens, 1))
        stop = base_stop + ([markers.code_end] if can_execute and markers.code_end not in base_stop else [])
        if stop:
            request["stop"] = stop
        completion = await client.complete("completions", request)
        text += completion.text
        tokens += completion.num_generated_tokens or 0
        code = pending_code(text, markers) if can_execute and completion.finish_reason == "stop" else None
        if code is None and completion.stop_reason == markers.code_end and can_execute and tokens < budget:
            # the marker also closes other blocks (or opens a bare fence): not code, so put it back and go on
            text += markers.code_end
            continue
        if code is None or tokens >= budget:
            finish = "length" if tokens >= budget and completion.finish_reason != "stop" else completion.finish_reason
            return CodeRunResult(text, finish, tokens, executions)
        result = await asyncio.to_thread(sandbox.execute, code, "python", timeout)
        executions += 1
        text += markers.code_end + markers.output_begin + format_output(result, max_output_chars) + markers.output_end
    return CodeRunResult(text, completion.finish_reason if completion else None, tokens, executions)
