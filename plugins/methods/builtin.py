"""Built-in method plugins."""
