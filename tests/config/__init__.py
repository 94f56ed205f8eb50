"""Options, their checks, the environment and secrets (opencdp.config)."""
