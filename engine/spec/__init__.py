"""The spec file: its models, its loader with positions, and its checks."""
