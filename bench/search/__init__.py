"""The search: Optuna storage and study, the YAML search spaces, the objective, the speed
probes, the time policy (``budget``) and the trial attributes (``attrs``)."""
