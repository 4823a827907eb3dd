"""The gateway: an OpenAI- and Anthropic-compatible reverse proxy that enforces the policy."""
