"""The built-in plugins of encodenet-bench, registered through the same hooks as third-party ones."""
