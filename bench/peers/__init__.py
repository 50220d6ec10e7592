"""Peer systems run on the same data under the same budget, scored by bench's own scoring
code and recorded as ``kind="peer"`` records: ``constant`` (the train prior, the floor) and
``autogluon`` (AutoGluon MultiModal in its own venv). ``command`` is ``bench peer``."""
