"""The one table of attribute names.

Every attribute name Watchkeeper reads or writes is here. For each normalized field, the
names are listed in order of preference: the OpenTelemetry GenAI name our SDK emits (v1.41)
first, then older GenAI names (v1.36+), then OpenInference and other widespread names. The
ingest normalizer reads the first one present; the SDK writes the first one.

Token counts follow the GenAI semantic conventions: `input_tokens` counts *all* input tokens,
cache reads and cache writes included (OpenAI reports cached tokens inside prompt_tokens this
way; an SDK wrapping Anthropic, which reports them apart, must add them up before setting
`gen_ai.usage.input_tokens`), and `output_tokens` includes reasoning tokens. The ingest path
repairs the obvious violation (cache counts larger than the input count) by adding them.
"""

from __future__ import annotations

from typing import Final

# --- names our SDK emits -------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
ERROR_TYPE: Final = "error.type"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
SERVICE_NAME: Final = "service.name"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"  # retries inside one client call

# Watchkeeper's own attributes (set by our SDK; any app may set them).
WK_PROJECT: Final = "watchkeeper.project"
WK_OUTCOME: Final = "watchkeeper.outcome"  # success | error | timeout | fallback | rejected
WK_OPERATION: Final = "watchkeeper.operation"  # one of model.OPERATIONS
WK_GUARD_NAME: Final = "watchkeeper.guard.name"
WK_GUARD_ATTEMPT: Final = "watchkeeper.guard.attempt"
WK_GUARD_DEADLINE_S: Final = "watchkeeper.guard.deadline_s"
WK_GUARD_FALLBACK: Final = "watchkeeper.guard.fallback"  # name of the fallback that answered
WK_COST_USD: Final = "watchkeeper.cost.usd"
WK_FEATURE: Final = "watchkeeper.feature"
WK_INPUT: Final = "watchkeeper.input"
WK_OUTPUT: Final = "watchkeeper.output"
WK_LLM_STREAMING: Final = "watchkeeper.llm.streaming"  # the response was streamed
WK_LLM_TIME_TO_FIRST_CHUNK_S: Final = "watchkeeper.llm.time_to_first_chunk_s"

# --- what the normalizer reads, field by field (first present wins) ------------------------
READ: Final[dict[str, tuple[str, ...]]] = {
    "project": (WK_PROJECT,),
    "service": (SERVICE_NAME,),
    "environment": (DEPLOYMENT_ENVIRONMENT_NAME, "deployment.environment"),
    "outcome": (WK_OUTCOME,),
    "operation": (WK_OPERATION,),
    "gen_ai_operation": (GEN_AI_OPERATION_NAME,),
    "openinference_kind": ("openinference.span.kind",),
    "provider": (GEN_AI_PROVIDER_NAME, "gen_ai.system", "llm.provider", "llm.system"),
    "request_model": (
        GEN_AI_REQUEST_MODEL,
        "llm.model_name",
        "embedding.model_name",  # OpenInference names an embedding call's model apart
        "llm.request.model",
    ),
    "response_model": (GEN_AI_RESPONSE_MODEL, "llm.response.model"),
    "input_tokens": (
        GEN_AI_USAGE_INPUT_TOKENS,
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
    ),
    "output_tokens": (
        GEN_AI_USAGE_OUTPUT_TOKENS,
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
    ),
    "cache_read_tokens": (
        GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.input_tokens.cached",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.input_tokens.cache_write",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        "gen_ai.usage.output_tokens.reasoning",
        "llm.token_count.completion_details.reasoning",
    ),
    # OpenInference's request parameters, a JSON object: the only place a failed call names
    # its model (its instrumentors set llm.model_name from the response).
    "invocation_parameters": ("llm.invocation_parameters", "embedding.invocation_parameters"),
    "cost_usd": (WK_COST_USD, "gen_ai.usage.cost", "llm.cost.total"),
    "user_id": (USER_ID, "enduser.id", "langfuse.user.id"),
    "session_id": (SESSION_ID, GEN_AI_CONVERSATION_ID, "langfuse.session.id"),
    "agent_name": (GEN_AI_AGENT_NAME, "agent.name"),
    "tool_name": (GEN_AI_TOOL_NAME, "tool.name"),
    "error_type": (ERROR_TYPE, "exception.type"),
    "finish_reason": (GEN_AI_RESPONSE_FINISH_REASONS, "llm.finish_reason"),
    "http_method": (HTTP_REQUEST_METHOD, "http.method"),
    "http_route": (HTTP_ROUTE, "http.target", URL_PATH),
    "http_status_code": (HTTP_RESPONSE_STATUS_CODE, "http.status_code"),
    "feature": (WK_FEATURE,),
    "input": (
        WK_INPUT,
        GEN_AI_INPUT_MESSAGES,
        "input.value",
        GEN_AI_TOOL_CALL_ARGUMENTS,
        "gen_ai.prompt",
    ),
    "output": (
        WK_OUTPUT,
        GEN_AI_OUTPUT_MESSAGES,
        "output.value",
        GEN_AI_TOOL_CALL_RESULT,
        "gen_ai.completion",
    ),
}

#: The key of the model in an OpenInference invocation_parameters object.
INVOCATION_MODEL_KEY: Final = "model"

#: gen_ai.operation.name values → our operation.
GEN_AI_OPERATIONS: Final[dict[str, str]] = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "create_agent": "agent",
    "invoke_agent": "agent",
    "invoke_workflow": "workflow",
    "retrieval": "retrieval",
}

#: openinference.span.kind values → our operation.
OPENINFERENCE_KINDS: Final[dict[str, str]] = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
    "TOOL": "tool",
    "AGENT": "agent",
    "CHAIN": "workflow",
    "GUARDRAIL": "other",
    "EVALUATOR": "other",
}

# --- span events read by the normalizer ---------------------------------------------------
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
#: Deprecated GenAI content events (before gen_ai.input/output.messages): prompt side.
GEN_AI_INPUT_EVENTS: Final = frozenset(
    {"gen_ai.content.prompt", "gen_ai.system.message", "gen_ai.user.message", "gen_ai.tool.message"}
)
#: ... and completion side.
GEN_AI_OUTPUT_EVENTS: Final = frozenset({"gen_ai.content.completion", "gen_ai.choice"})
#: A past assistant turn sent with a request: part of the input.
GEN_AI_ASSISTANT_EVENT: Final = "gen_ai.assistant.message"
#: Attributes of those events that carry the text.
GEN_AI_EVENT_PROMPT: Final = "gen_ai.prompt"
GEN_AI_EVENT_COMPLETION: Final = "gen_ai.completion"
#: Where the payload's resource document keeps the instrumentation scope.
OTEL_SCOPE_NAME: Final = "otel.scope.name"
OTEL_SCOPE_VERSION: Final = "otel.scope.version"
