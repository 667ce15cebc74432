"""EncodeNet (Mahmud, Desai, Lama, Prasad): the method this harness exists to test. See ``method.py``. Declared
(registered) in ``plugins/methods/__init__.py``.
"""
