"""Settings per environment: ``base`` (shared), ``local`` (embedded default for ``make run``),
``production`` (everything from the environment, no defaults for secrets) and ``test``."""
