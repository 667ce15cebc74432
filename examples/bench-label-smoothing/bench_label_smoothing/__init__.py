"""An example third-party plugin for encodenet-bench."""
