"""Built-in recipe plugin: ``builtin.py`` holds the recipes (plain data) and declares them."""
