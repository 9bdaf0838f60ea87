"""A local OpenAI-compatible fine-tuning server (placeholder until issue 3 lands)."""
