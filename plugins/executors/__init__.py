"""Built-in executor plugins: backends; ``builtin.py`` declares what each registers."""
