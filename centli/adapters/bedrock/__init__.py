"""Agent event formats (Bedrock Agents' OpenAPI and function-details styles, AgentCore Gateway) and AgentCore's
signed identity assertions."""
