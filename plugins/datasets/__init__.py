"""Built-in dataset plugins: loaders; ``builtin.py`` declares what each registers."""
