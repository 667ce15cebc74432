"""The method contract (:mod:`harness.methods.contract`) and the stages methods share
(:mod:`harness.methods.shared`).

Plugins import from :mod:`harness.api`.
"""
