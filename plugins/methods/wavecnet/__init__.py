"""``wavecnet``: wavelet downsampling (WaveCNet, Li et al.). See ``method.py``. Declared (registered) in
``plugins/methods/__init__.py``.
"""
