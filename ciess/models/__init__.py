"""Maskable base models on RecBole's LightGCN, NGCF and NeuMF, behind one registry.

RecBole's classes are reused (layers, BPR loss, initialisation); what the suite changes is in
``maskable`` (masks, narrowing, L2 term), ``graph`` (LightGCN, NGCF through the symmetric sparse
product, ``propagation``) and ``neumf`` (BPR training, exact all-item scoring). Every per-model
fact is in the model's ``ModelSpec`` (``registry``). Names are loaded on first use, so asking the
registry for a label or a table count imports neither torch nor RecBole.
"""
from __future__ import annotations

import importlib

_WHERE = {
    **dict.fromkeys(("MODELS", "ModelSpec", "build_model", "gmf_dense", "import_plugins",
                     "model_defaults", "model_spec", "register_model"), "registry"),
    **dict.fromkeys(("MaskableMixin", "RecBoleConfig", "SplitAdapter", "SquaredL2Loss",
                     "TableMask", "embedding_tables", "normalized_adjacency", "rewind_tables"),
                    "maskable"),
    **dict.fromkeys(("MaskedLightGCN", "MaskedNGCF"), "graph"),
    "MaskedNeuMF": "neumf",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ciess.models' has no attribute '{name}'")
    return getattr(importlib.import_module(f"ciess.models.{_WHERE[name]}"), name)
