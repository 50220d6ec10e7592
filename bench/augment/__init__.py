"""Augmentation policies: the registry (``registry.py``) and the built-ins (none, simple,
AutoAugment, DCGAN), registered when the registry is first looked up."""
