"""Built-in method plugins: implementations; ``builtin.py`` declares what each registers."""
