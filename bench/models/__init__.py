"""Model families: the registry, the built-in families and the timm passthrough."""
