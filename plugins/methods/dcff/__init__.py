"""DCFF (Lin et al.): dynamic-coded filter fusion, a compact model trained from scratch. See ``method.py``.
Declared (registered) in ``plugins/methods/builtin.py``.
"""
