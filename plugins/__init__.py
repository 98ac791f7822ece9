"""The built-in plugins, registered through the same hooks a third party uses."""
