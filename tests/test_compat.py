"""One test per item of ciess/compat.py (RecBole 1.2.1 on today's stack, and two start-up costs)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import ciess  # noqa: F401  (applies the fixes)
from ciess import compat


def _tiny_atomic_dataset(root, name="tiny", n_users=30, n_items=25, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(1, n_users + 1):
        for t, i in enumerate(rng.choice(np.arange(1, n_items + 1), per_user, replace=False)):
            lines.append(f"{u}\t{i}\t4\t{t}")
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    return root


def test_numpy2_aliases_restored_and_config_builds():
    """Breakage 1: numpy 2 removed np.float_ etc., which every RecBole Config(...) reads."""
    for name in ("float_", "complex_", "unicode_"):
        assert hasattr(np, name), name
    from recbole.config import Config

    cfg = Config(model="BPR", dataset="ml-100k", config_dict={"epochs": 1})
    assert cfg["model"] == "BPR"


def test_dok_update_restored_and_matches_scipy_assignment():
    """Breakage 2: SciPy >= 1.12 removed dok_matrix._update (LightGCN/NGCF adjacency)."""
    a = sp.dok_matrix((4, 4), dtype=np.float32)
    a._update({(0, 1): 1.0, (2, 3): 1.0})
    b = sp.dok_matrix((4, 4), dtype=np.float32)
    b[0, 1] = 1.0
    b[2, 3] = 1.0
    assert (a != b).nnz == 0 and a.nnz == 2


@pytest.mark.parametrize("model", ["LightGCN", "NGCF", "NeuMF"])
def test_recbole_trains_evaluates_and_reloads_checkpoint(tmp_path, monkeypatch, model):
    """Breakages 2 and 3 end to end: stock RecBole builds, trains one epoch, then
    evaluate(load_best_model=True) reloads its own checkpoint (torch>=2.6 weights_only)."""
    monkeypatch.chdir(tmp_path)  # RecBole writes log/ and log_tensorboard/ into the cwd
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    data_root = _tiny_atomic_dataset(tmp_path / "data")
    cfg = Config(model=model, dataset="tiny", config_dict={
        "data_path": str(data_root), "checkpoint_dir": str(tmp_path / "ckpt"), "epochs": 1,
        "train_batch_size": 64, "eval_batch_size": 256, "device": "cpu", "use_gpu": False,
        "show_progress": False, "save_dataset": False, "save_dataloaders": False,
        "log_wandb": False, "state": "ERROR", "metrics": ["Recall", "NDCG"], "topk": [5],
        "valid_metric": "Recall@5", "train_neg_sample_args": {"distribution": "uniform",
                                                               "sample_num": 1},
    })
    init_seed(cfg["seed"], cfg["reproducibility"])
    dataset = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, dataset)
    net = get_model(cfg["model"])(cfg, train._dataset).to(cfg["device"])
    trainer = get_trainer(cfg["MODEL_TYPE"], cfg["model"])(cfg, net)
    trainer.fit(train, valid, saved=True, show_progress=False)
    result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    assert 0.0 <= float(result["recall@5"]) <= 1.0
    compat.assert_no_quick_start()


def test_recbole_trainer_torch_load_is_scoped():
    """Breakage 3: only RecBole's trainer module gets the trusted load; torch itself is untouched."""
    import inspect

    import recbole.trainer.trainer as rt

    assert rt.torch.load.keywords == {"weights_only": False}
    assert "weights_only" not in getattr(torch.load, "keywords", {})
    assert inspect.signature(torch.load).parameters["weights_only"].default is None


def test_suite_never_imports_quick_start():
    """Breakage 4: recbole.quick_start imports ray; importing the suite must not pull it in."""
    code = ("import sys, ciess, ciess.data.fetch, ciess.data.split; "
            "print('recbole.quick_start' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    sys.modules["recbole.quick_start"] = object()
    try:
        with pytest.raises(RuntimeError, match="quick_start"):
            compat.assert_no_quick_start()
    finally:
        del sys.modules["recbole.quick_start"]


def test_recbole_installed_without_conflicting_pins():
    """Breakage 5: RecBole's setup.py pins colorlog==4.7.2 and ray<=2.6.3; we run without them."""
    from importlib.metadata import PackageNotFoundError, version

    assert version("recbole") == "1.2.1"
    assert version("colorlog") != "4.7.2"
    with pytest.raises(PackageNotFoundError):
        version("ray")


def test_training_imports_skip_unused_recbole_models_and_get_model_still_works():
    """compat fix 5 and the deferred trainer patch: a training job imports three RecBole
    models, not all of them (nor scikit-learn); RecBole's own look-ups still find every model."""
    import subprocess
    import sys

    code = ("import sys, ciess.models.graph, ciess.models.neumf; "
            "print('sklearn' in sys.modules, 'recbole.trainer.trainer' in sys.modules); "
            "from recbole.utils import get_model; import ciess.models.graph as m; "
            "print(get_model('NGCF') is m.NGCF, get_model('Pop').__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True", "Pop"]


_ADAM_RUN = """
import sys
if sys.argv[1] == "with_dynamo":
    import torch._dynamo  # imported first: compat leaves torch's optimizers as they are
from ciess import compat
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1)
calls = []
opt.register_step_post_hook(lambda *a: calls.append(1))
for _ in range(20):
    x = torch.randn(16, 7)
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
assert len(calls) == 20 and torch.is_grad_enabled()  # grad mode restored after each step
print("dynamo", "torch._dynamo" in sys.modules)
print(repr([p.detach().flatten().tolist() for p in model.parameters()]))
"""


def test_optimizers_run_without_importing_the_compiler_and_step_identically():
    """Item 7: torch's Adam without the torch._dynamo import (1.4 s per training job) gives
    bit-identical parameters to torch's own, and its step hooks still run."""
    runs = {}
    for mode in ("with_dynamo", "without"):
        out = subprocess.run([sys.executable, "-c", _ADAM_RUN, mode], capture_output=True,
                             text=True, check=True).stdout.splitlines()
        runs[mode] = out
    assert runs["with_dynamo"][0] == "dynamo True"
    assert runs["without"][0] == "dynamo False"
    assert runs["without"][1] == runs["with_dynamo"][1]
