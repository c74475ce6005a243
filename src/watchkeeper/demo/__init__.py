"""The demo AI service, its load generator and fake LLM providers."""
