"""The run stage: ``bench run`` / ``bench search`` (command, settings, flags), the final phase,
one seed's fit and score, local workers, the progress display, and ``bench train``."""
