"""gigawatt: plan, simulate and enforce LLM usage limits from one policy file."""

__version__ = "0.1.0"
