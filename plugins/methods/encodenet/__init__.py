"""EncodeNet (Mahmud, Desai, Lama, Prasad): the method this harness exists to test. See ``method.py``."""

from __future__ import annotations

from harness.api import Register, hookimpl
from plugins.methods.encodenet.method import EncodeNet, EncodeNetClassTarget, EncodeNetFinetune, EncodeNetInputTarget


@hookimpl
def bench_register_methods(register: Register) -> None:
    register("encodenet", EncodeNet, description=EncodeNet.summary)
    register("encodenet-class", EncodeNetClassTarget, description=EncodeNetClassTarget.summary)
    register("encodenet-input", EncodeNetInputTarget, description=EncodeNetInputTarget.summary)
    register("encodenet-finetune", EncodeNetFinetune, description=EncodeNetFinetune.summary)
