"""Built-in architecture plugins."""
