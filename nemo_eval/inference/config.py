"""The generation step's configuration: every field is a ``++key=value`` override.

Field names are public interface (docs and users' scripts use them): ``++benchmark``,
``++split``, ``++input_file``, ``++output_file``, ``++server.*``, ``++inference.*``,
``++max_samples``, ``++max_concurrent_requests``, ``++prompt_config``, ``++examples_type``,
``++num_few_shots``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from nemo_eval.prompts.builder import PromptSettings

GREEDY = {"temperature": 0.0, "top_p": 1.0}
SAMPLED = {"temperature": 0.7, "top_p": 0.95}


@dataclass
class ServerConfig:
    """Where requests go, and how hard to try."""

    server_type: str = field(default="openai", metadata={
        "help": "the server's type: openai (an existing endpoint) or one to launch (listed below)"})
    base_url: Optional[str] = field(default=None, metadata={
        "help": "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (default: from host/port)"})
    host: str = field(default="127.0.0.1", metadata={"help": "server host when base_url is not given"})
    port: Optional[int] = field(default=None, metadata={
        "help": "server port when base_url is not given (a launched server picks a free one)"})
    model: Optional[str] = field(default=None, metadata={
        "help": "model name sent to the server (or the path a launched server loads); default: the only "
                "model the server offers"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "name of the environment variable holding the API key (sent only when set)"})
    request_timeout: float = field(default=1800.0, metadata={"help": "seconds to wait for one response"})
    max_retries: int = field(default=6, metadata={
        "help": "retries for 429, 5xx, timeouts, dropped connections and malformed responses"})
    retry_base_delay: float = field(default=1.0, metadata={"help": "first backoff delay (doubles, with jitter)"})
    retry_max_delay: float = field(default=60.0, metadata={"help": "longest backoff delay"})
    server_gpus: int = field(default=0, metadata={"help": "GPUs for a launched server (tensor parallel size)"})
    server_nodes: int = field(default=1, metadata={"help": "nodes for a launched server (pipeline parallel size)"})
    server_args: str = field(default="", metadata={"help": "extra command-line arguments for a launched server"})
    startup_timeout: float = field(default=1800.0, metadata={"help": "seconds a launched server may take to get healthy"})
    max_requests_per_minute: Optional[float] = field(default=None, metadata={
        "help": "request rate limit (shared by the generation steps of one eval run against this endpoint)"})
    max_tokens_per_minute: Optional[float] = field(default=None, metadata={
        "help": "token rate limit, prompt + completion: estimated before sending, corrected from usage"})
    price_per_million_input: Optional[float] = field(default=None, metadata={
        "help": "price of a million prompt tokens (any currency): the cost is estimated before and reported after"})
    price_per_million_output: Optional[float] = field(default=None, metadata={
        "help": "price of a million generated tokens (reasoning tokens included)"})
    adaptive_concurrency: Optional[bool] = field(default=None, metadata={
        "help": "adapt requests in flight (up to max_concurrent_requests) and the request rate to 429s and "
                "timeouts; default: on for an existing endpoint (openai), off for servers nemo-eval launches"})


@dataclass
class InferenceConfig:
    """Sampling parameters sent with every request."""

    temperature: Optional[float] = field(default=None, metadata={
        "help": "default 0 (greedy), or 0.7 when random_seed is set"})
    top_p: Optional[float] = field(default=None, metadata={"help": "default 1.0, or 0.95 when random_seed is set"})
    top_k: Optional[int] = field(default=None, metadata={"help": "sent only when set (not all servers accept it)"})
    tokens_to_generate: Optional[int] = field(default=None, metadata={
        "help": "max tokens per generation (default: the benchmark's)"})
    random_seed: Optional[int] = field(default=None, metadata={
        "help": "set for a sampled run: sent to the server as seed, and switches the sampling defaults"})
    stop: List[str] = field(default_factory=list, metadata={
        "help": "extra stop strings, added to the prompt config's; \\n and \\t in them are newline and tab"})
    endpoint: Optional[str] = field(default=None, metadata={
        "help": "chat or completions (default: completions when prompt_template is set, else chat)"})
    extra_body: Dict[str, Any] = field(default_factory=dict, metadata={
        "help": "extra request fields passed as is, e.g. ++inference.extra_body.min_p=0.05"})


@dataclass
class CodeExecutionConfig:
    """Running model-written code during generation (needs a prompt config with code_execution markers)."""

    enabled: bool = field(default=False, metadata={"help": "run the model's code blocks in the sandbox and continue"})
    max_executions: int = field(default=8, metadata={"help": "code blocks run per generation at most"})
    sandbox_address: str = field(default="http://127.0.0.1:6000", metadata={"help": "the sandbox service"})
    timeout: float = field(default=10.0, metadata={"help": "seconds per code block"})
    max_output_chars: int = field(default=1000, metadata={"help": "output shown to the model per block"})


@dataclass
class GenerateConfig(PromptSettings):
    """Configuration of ``python -m nemo_eval.inference.generate``."""

    benchmark: Optional[str] = field(default=None, metadata={"help": "benchmark to generate for"})
    split: Optional[str] = field(default=None, metadata={"help": "benchmark split (default: the benchmark's)"})
    input_file: Optional[str] = field(default=None, metadata={
        "help": "JSONL input instead of a benchmark (each line's fields fill the prompt)"})
    output_file: Optional[str] = field(default=None, metadata={"help": "where generations go (JSONL)"})
    output_dir: Optional[str] = field(default=None, metadata={
        "help": "alternative to output_file: <output_dir>/<benchmark>/output-greedy.jsonl or output-rs<seed>.jsonl"})
    max_samples: int = field(default=-1, metadata={"help": "only the first N items (-1: all)"})
    max_concurrent_requests: int = field(default=64, metadata={"help": "requests in flight at once"})
    overwrite: bool = field(default=False, metadata={
        "help": "discard an existing output made with different settings instead of refusing"})
    dry_run: bool = field(default=False, metadata={"help": "print the first prompt and request, send nothing"})
    cache_dir: Optional[str] = field(default=None, metadata={
        "help": "response cache: a request sent before (same endpoint, model and body) is answered from here, "
                "in any output dir, after a crash or by a concurrent run; unset = no cache"})
    data_dir: Optional[str] = field(default=None, metadata={"help": "prepared data directory"})
    server: ServerConfig = field(default_factory=ServerConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    code_execution: CodeExecutionConfig = field(default_factory=CodeExecutionConfig)


def check_settings(config: GenerateConfig) -> None:
    """One-line errors for settings out of range, before anything is sent (the launcher checks them too)."""
    from nemo_eval.errors import UserError

    inference, server = config.inference, config.server
    problems = []
    if config.max_samples < -1:
        problems.append("++max_samples must be -1 (all items) or a number of items")
    if config.max_concurrent_requests < 1:
        problems.append("++max_concurrent_requests must be at least 1")
    for name in ("price_per_million_input", "price_per_million_output"):
        value = getattr(server, name)
        if value is not None and not value >= 0:
            problems.append(f"++server.{name} must be >= 0 (or null)")
    for name in ("max_requests_per_minute", "max_tokens_per_minute"):
        value = getattr(server, name)
        if value is not None and not value > 0:
            problems.append(f"++server.{name} must be a positive number (or null for no limit)")
    if inference.temperature is not None and inference.temperature < 0:
        problems.append("++inference.temperature must be >= 0 (0 is greedy)")
    if inference.top_p is not None and not 0 < inference.top_p <= 1:
        problems.append("++inference.top_p must be in (0, 1]")
    if inference.top_k is not None and inference.top_k != -1 and inference.top_k < 1:
        problems.append("++inference.top_k must be >= 1 (or -1: no limit)")
    if inference.tokens_to_generate is not None and inference.tokens_to_generate < 1:
        problems.append("++inference.tokens_to_generate must be >= 1")
    if server.max_retries < 0 or server.request_timeout <= 0 or server.startup_timeout <= 0:
        problems.append("++server.max_retries must be >= 0, ++server.request_timeout and ++server.startup_timeout > 0")
    if server.retry_base_delay < 0 or server.retry_max_delay < 0:
        problems.append("++server.retry_base_delay and ++server.retry_max_delay must be >= 0")
    if server.server_gpus < 0 or server.server_nodes < 1:
        problems.append("++server.server_gpus must be >= 0 and ++server.server_nodes >= 1")
    execution = config.code_execution
    if execution.max_executions < 0 or execution.timeout <= 0 or execution.max_output_chars < 0:
        problems.append("++code_execution.max_executions and max_output_chars must be >= 0, ++code_execution.timeout > 0")
    if problems:
        raise UserError(problems[0])


def decode_escapes(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` in a stop string given on the command line -> newline, tab, backslash
    (shells and Hydra's grammar keep them as two characters)."""
    import re

    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def sampling_params(inference: InferenceConfig) -> dict[str, float]:
    """Temperature and top_p after applying the greedy / sampled defaults."""
    defaults = SAMPLED if inference.random_seed is not None else GREEDY
    return {
        "temperature": defaults["temperature"] if inference.temperature is None else inference.temperature,
        "top_p": defaults["top_p"] if inference.top_p is None else inference.top_p,
    }
