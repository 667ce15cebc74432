"""Filter-level fine-tuning for distorted images (Bianchi et al. 2019). See ``method.py``. Declared (registered)
in ``plugins/methods/__init__.py``.
"""
