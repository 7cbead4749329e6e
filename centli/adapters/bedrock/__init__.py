"""Agent event formats: Bedrock Agents (OpenAPI and function-details styles) and AgentCore Gateway.

Each format is parsed into one neutral :class:`AgentCall` and a neutral
:class:`AgentResult` is rendered back in the format the call came in.
"""

from centli.adapters.bedrock.events import parse_event, render

__all__ = ["parse_event", "render"]
