"""Built-in architecture plugins: implementations; ``builtin.py`` declares what each registers (and the variant
tables)."""
