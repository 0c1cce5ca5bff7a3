"""Speed and memory of the suite's training path, as ratios measured in one run.

Section `propagation` (per dataset): the pure SpMM Â·X at widths 128/64/25/6 (and 128 split into
column blocks); one LightGCN / NGCF training step (batch 10,000) before (RecBole's forward,
autograd through torch.sparse.mm, 128 columns) and after (the symmetric product; models narrowed
to their mask), with the step's SpMM work (3 layers x forward + backward products at width 128)
and the ratio step / SpMM work; LightGCN retraining per batch for ES and MR at 80/90/95 with 128
columns and at the mask's width, and Full / narrowed.

Section `recbole` prints, per base model, measured in this run (each measurement in its own process so peak
memory is its own):
  stock      RecBole's own class and Trainer._train_epoch at `--recbole-batch` (default 2048);
             NeuMF, which RecBole trains pointwise (BCE, no L2), with RecBole's BPRLoss and
             EmbLoss instead: the suite's objective (``stock_class``)
  masked     the same Trainer, loader and batch with the suite's masked class (ES mask at 90%)
  unmasked   the same with the suite's class and no mask: masked/unmasked = cost of masking
  suite      the suite's path (vectorised sampler, batch 10,000): one epoch-equivalent =
             ceil(|train| / 10,000) batches, and one full-ranking evaluation of all users
Ratios: masked/stock and masked/unmasked epoch time; suite epoch / stock epoch; evaluation /
suite epoch.

Section `masking` (per base model, one process): the cost of the mask itself, measured
interleaved (blocks of 20 steps of each model in turn, so that the machine's drift hits all
alike): the suite's training step at `--recbole-batch` with the ES-90 mask at the full 128
columns, against RecBole's own class (``stock_class``, the same sampler, optimizer and step
function) and the suite's class unmasked; and, for context, the same mask narrowed to its
width, as every retraining runs it. It also prints the optimizer's share (Adam's step, timed
inside the same steps) and torch.sqrt over zeros vs positive values: Adam takes the square root
of its second moment, which is exactly 0 at every masked entry, and torch's CPU sqrt is several
times slower on zeros. Each time is the median of `--repeats` epochs (and evaluations). RecBole epochs
are measured over `--recbole-batches` batches when given (and scaled to a full epoch: labelled
"scaled"), else over a full epoch.

  python benchmarks/speed.py                                 # ML-100K (needs no network)
  CIESS_DATA_MIRROR=/path/to/mirror python benchmarks/speed.py --dataset ml-100k,ml-1m --recbole-batches 40
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prepare_split(dataset: str, workdir: Path) -> Path:
    """The split as the workflow makes it (same library functions), cached under workdir."""
    from ciess.data.fetch import fetch_dataset, load_catalog
    from ciess.data.preprocess import PARSERS, preprocess
    from ciess.data.split import split_per_user, write_split

    manifest = workdir / dataset / "split" / "manifest.json"
    if manifest.exists():
        return manifest
    catalog = load_catalog(REPO / "config/datasets.yaml")
    prov = fetch_dataset(catalog, dataset, workdir / dataset / "source")
    raw = PARSERS[catalog[dataset]["parser"]](workdir / dataset / "source", prov["form"],
                                              [f["path"] for f in prov["files"]])
    table, stats = preprocess(raw)
    parts, summary = split_per_user(table, allow_empty_parts=catalog[dataset].get(
        "allow_empty_split_parts", False))
    write_split(parts, manifest.parent, dataset, stats, 42, (0.5, 0.25, 0.25), summary)
    return manifest


class FirstBatches:
    """The first n batches of a RecBole DataLoader, as something _train_epoch can iterate."""

    def __init__(self, loader, n):
        self.loader, self.n, self.shuffle = loader, n, False

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.n)

    def __len__(self):
        return min(self.n, len(self.loader))


def stock_class(model_name: str):
    """RecBole's own class for ``model_name``. RecBole trains NeuMF pointwise (BCE over positives
    and sampled negatives: twice the rows of an epoch, no L2); the suite trains it with BPR and
    the protocol's L2 term. Compared like with like, NeuMF's stock row is RecBole's NeuMF class
    with RecBole's ``BPRLoss`` on its pairwise batches and RecBole's ``EmbLoss`` on the six
    looked-up embeddings (RecBole's pairwise models' way), RecBole's forward untouched."""
    from recbole.model.loss import BPRLoss, EmbLoss
    from recbole.utils import InputType, get_model

    from ciess.models import model_spec

    spec = model_spec(model_name)
    stock = get_model(spec.recbole_class)
    if stock.input_type == spec.model_class().input_type:
        return stock
    if spec.recbole_class != "NeuMF":
        raise NotImplementedError(f"no pairwise variant of RecBole's {spec.recbole_class} "
                                  f"(it trains {stock.input_type.name}) to compare with")

    class NeuMFBPR(stock):
        input_type = InputType.PAIRWISE

        def __init__(self, config, dataset):
            super().__init__(config, dataset)
            self.NEG_ITEM_ID = config["NEG_PREFIX"] + self.ITEM_ID
            self.reg_weight = config["reg_weight"]
            self.bpr, self.emb_loss = BPRLoss(), EmbLoss()

        def calculate_loss(self, interaction):
            user = interaction[self.USER_ID]
            pos, neg = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
            reg = self.emb_loss(self.user_mf_embedding(user), self.item_mf_embedding(pos),
                                self.item_mf_embedding(neg), self.user_mlp_embedding(user),
                                self.item_mlp_embedding(pos), self.item_mlp_embedding(neg),
                                require_pow=True)
            return (self.bpr(self.forward(user, pos), self.forward(user, neg))
                    + self.reg_weight * reg)

    return NeuMFBPR


def measure_recbole(kind: str, model_name: str, manifest: Path, batch: int, n_batches: int | None,
                    workdir: Path, repeats: int) -> dict:
    import torch
    from recbole.utils import get_trainer, init_seed

    from ciess.masks import sizes_mask
    from ciess.models import model_defaults, model_spec
    from recbole_bridge import recbole_config, recbole_data  # benchmarks/, beside this script
    from baselines.es import equal_size_for_budget

    hp = {k: v for k, v in model_defaults(model_name).items()
          if k not in ("lr", "lr_decay", "decay_batches", "min_lr", "mask_gmf", "init_std")}
    spec = model_spec(model_name)
    model_cls = stock_class(model_name) if kind == "stock" else spec.model_class()
    cfg = recbole_config(manifest.parent, json.loads(manifest.read_text())["dataset"], model_cls,
                         {**hp, "train_batch_size": batch, "eval_batch_size": 4096,
                          "learning_rate": 0.001}, workdir=workdir)
    if kind != "stock":
        cfg["init_std"] = model_defaults(model_name).get("init_std", 0.01)
        cfg["mask_gmf"] = True
    init_seed(0, True)
    dataset, train, valid, _ = recbole_data(cfg)
    model = model_cls(cfg, train._dataset)
    if kind == "masked":
        nu, ni = dataset.user_num, dataset.item_num
        size = equal_size_for_budget(90, nu, ni, model.n_tables)
        model.apply_mask(sizes_mask(torch.full((nu,), size).numpy(), torch.full((ni,), size).numpy()))
    trainer = get_trainer(cfg["MODEL_TYPE"], cfg["model"])(cfg, model)
    loader = train if n_batches is None else FirstBatches(train, n_batches)
    trainer._train_epoch(FirstBatches(train, 2), 0)  # warm-up (allocator, first-call costs)
    times = []
    for epoch in range(repeats):
        t0 = time.perf_counter()
        trainer._train_epoch(loader, epoch + 1)
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
    full = len(train)
    measured = len(loader)
    t0 = time.perf_counter()
    trainer.evaluate(valid, load_best_model=False, show_progress=False)
    eval_s = time.perf_counter() - t0
    return {"epoch_s": seconds * full / measured, "batches_measured": measured,
            "batches_per_epoch": full, "scaled": measured < full, "eval_s": eval_s}


def measure_suite(model_name: str, manifest: Path, repeats: int) -> dict:
    import torch

    from ciess.evaluate import evaluate
    from ciess.masks import sizes_mask
    from ciess.models import build_model, model_spec
    from ciess.sampler import TripleSampler
    from ciess.train import train_step
    from ciess.data.read_split import load_split
    from baselines.es import equal_size_for_budget

    split = load_split(manifest)
    torch.manual_seed(0)
    n_tables = model_spec(model_name).n_tables
    size = equal_size_for_budget(90, split.n_users, split.n_items, n_tables)
    mask = sizes_mask(torch.full((split.n_users,), size).numpy(),
                      torch.full((split.n_items,), size).numpy())
    model = build_model(model_name, split.n_users, split.n_items, split.train, mask=mask)
    sampler = TripleSampler(split.train, 10_000, "user_uniform", 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    per_epoch = split.batches_per_epoch(10_000)

    def step():
        train_step(model, opt, sampler, "cpu")

    model.train()
    step()  # warm-up
    epochs, evals = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_epoch):
            step()
        epochs.append(time.perf_counter() - t0)
    evaluate(model, split.train, split.valid)  # warm-up
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate(model, split.train, split.valid)
        evals.append(time.perf_counter() - t0)
    epoch_s, eval_s = float(np.median(epochs)), float(np.median(evals))
    return {"epoch_s": epoch_s, "batches_per_epoch": per_epoch, "eval_s": eval_s}


def measure_masking(model_name: str, manifest: Path, batch: int, repeats: int) -> dict:
    import torch

    from baselines.es import equal_size_for_budget
    from ciess.data.read_split import load_split
    from ciess.masks import sizes_mask
    from ciess.models import build_model, model_spec
    from ciess.models.maskable import SplitAdapter
    from ciess.models.registry import model_config
    from ciess.sampler import TripleSampler
    from ciess.train import train_step

    split = load_split(manifest)
    size = equal_size_for_budget(90, split.n_users, split.n_items, model_spec(model_name).n_tables)
    mask = sizes_mask(np.full(split.n_users, size), np.full(split.n_items, size))
    runs = {}
    for kind, kwargs in (("stock", None), ("unmasked", {}), ("masked", {"mask": mask}),
                         ("narrowed", {"mask": mask, "narrow": True})):
        torch.manual_seed(0)
        if kwargs is None:  # RecBole's own class (stock_class), built like the suite's
            model = stock_class(model_name)(model_config(model_name)[1], SplitAdapter(
                split.n_users, split.n_items, split.train))
        else:
            model = build_model(model_name, split.n_users, split.n_items, split.train, **kwargs)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        sampler = TripleSampler(split.train, batch, "user_uniform", 0)
        runs[kind] = (model, opt, sampler, [], _time_optimizer_steps(opt))
    block = 20
    for _ in range(4 * repeats):
        for model, opt, sampler, times, adam in runs.values():
            t0, adam_before = time.perf_counter(), adam[0]
            for _ in range(block):
                train_step(model, opt, sampler, "cpu")
            times.append(((time.perf_counter() - t0) / block * 1000,
                          (adam[0] - adam_before) / block * 1000))
    out = {}
    for kind, (_, _, _, times, _) in runs.items():
        out[kind] = float(np.median([t for t, _ in times[1:]]))
        out[f"{kind}_adam"] = float(np.median([a for _, a in times[1:]]))
    zeros, positive = torch.zeros(1_000_000), torch.rand(1_000_000) + 0.5
    out["sqrt_zeros_ms"] = _median_ms(zeros.sqrt, 20)
    out["sqrt_positive_ms"] = _median_ms(positive.sqrt, 20)
    return out


def _time_optimizer_steps(opt) -> list:
    """Wrap ``opt.step`` to add its wall time (s) to the returned one-element list."""
    total, step = [0.0], opt.step

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        result = step(*args, **kwargs)
        total[0] += time.perf_counter() - t0
        return result

    opt.step = timed
    return total


def print_masking(manifest: Path, args, workdir: Path) -> None:
    print(f"  cost of masking, one training step at batch {args.recbole_batch} (interleaved, "
          f"median of {4 * args.repeats - 1} blocks of 20 steps): RecBole's class (stock), the "
          "suite's without a mask, with the ES-90 mask at 128 columns, narrowed to the mask:")
    print(f"  {'model':9} {'stock':>9} {'unmasked':>9} {'masked':>9} {'masked/stock':>12} "
          f"{'masked/unm':>10} {'narrowed':>9} {'Adam step unm/masked':>21}")
    for model in args.models.split(","):
        r = run_child("masking", model, manifest, args, workdir)
        print(f"  {model:9} {r['stock']:7.2f}ms {r['unmasked']:7.2f}ms {r['masked']:7.2f}ms "
              f"{r['masked'] / r['stock']:12.3f} {r['masked'] / r['unmasked']:10.3f} "
              f"{r['narrowed']:7.2f}ms {r['unmasked_adam']:9.2f}/{r['masked_adam']:.2f}ms",
              flush=True)
    print(f"  torch.sqrt over 1M floats: {r['sqrt_zeros_ms']:.2f} ms on zeros, "
          f"{r['sqrt_positive_ms']:.2f} ms on positive values (Adam takes the square root of its "
          "second moment, which stays exactly 0 at masked entries)", flush=True)


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def measure_propagation(manifest: Path, repeats: int) -> dict:
    """Pure SpMM at several widths; LightGCN/NGCF training steps before (RecBole's forward,
    torch.sparse.mm autograd, 128 wide) and after (symmetric product, narrowed to the mask); the
    step's SpMM work; ES/MR at 80/90/95 per-batch time at 128 columns and at the mask's width."""
    import torch
    from recbole.model.general_recommender import NGCF, LightGCN

    from baselines.es import equal_size_for_budget
    from ciess.masks import sizes_mask
    from ciess.models import build_model
    from ciess.models.propagation import Adjacency, stock_forward
    from ciess.sampler import TripleSampler
    from ciess.train import train_step
    from ciess.data.read_split import load_split

    split = load_split(manifest)
    adj = Adjacency.from_interactions(split.train)
    a = adj.csr()
    n = a.shape[0]
    out = {"nodes": n, "nnz": int(adj.values.numel()), "spmm_ms": {}, "steps": {}, "widths": {}}
    for width in (128, 64, 25, 6):
        x = torch.randn(n, width)
        out["spmm_ms"][str(width)] = _median_ms(lambda: torch.sparse.mm(a, x), 3 * repeats)
    x = torch.randn(n, 128)
    out["spmm_128_blocks32_ms"] = _median_ms(lambda: torch.cat(
        [torch.sparse.mm(a, x[:, i:i + 32].contiguous()) for i in range(0, 128, 32)], 1),
        3 * repeats)

    def step_ms(model_name, mask=None, narrow=True, stock_cls=None, layout=None) -> float:
        torch.manual_seed(0)
        model = build_model(model_name, split.n_users, split.n_items, split.train, mask=mask,
                            narrow=narrow).train()
        if stock_cls is not None:
            model.forward = stock_forward(model, stock_cls, layout)
        sampler = TripleSampler(split.train, 10_000, "user_uniform", 0)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)

        return _median_ms(lambda: train_step(model, opt, sampler, "cpu"), 3 * repeats)

    layers = 3  # LightGCN and NGCF: 3 propagation layers, one product forward + one backward
    # the previous suite: CSR for LightGCN; COO for NGCF, whose SparseDropout needs COO indices
    for name, cls, layout in (("lightgcn", LightGCN, torch.sparse_csr),
                              ("ngcf", NGCF, torch.sparse_coo)):
        before, after = step_ms(name, stock_cls=cls, layout=layout), step_ms(name)
        bound = 2 * layers * out["spmm_ms"]["128"]
        out["steps"][name] = {"before_ms": before, "after_ms": after, "spmm_work_ms": bound,
                              "epoch_before_s": before * split.batches_per_epoch(10_000) / 1000,
                              "epoch_after_s": after * split.batches_per_epoch(10_000) / 1000}
    rng = np.random.default_rng(0)
    for method in ("es", "mr"):
        for pct in (80, 90, 95):
            if method == "es":
                size = equal_size_for_budget(pct, split.n_users, split.n_items, 1)
                mask = sizes_mask(np.full(split.n_users, size), np.full(split.n_items, size))
            else:
                from baselines.mr import draw_sizes
                from ciess.masks import budget_params, repair_to_budget
                sizes = repair_to_budget(draw_sizes(split.n_users + split.n_items, pct, rng),
                                         budget_params(pct, split.n_users, split.n_items, 1), rng)
                mask = sizes_mask(sizes[:split.n_users], sizes[split.n_users:])
            wide = step_ms("lightgcn", mask, narrow=False)
            narrow = step_ms("lightgcn", mask, narrow=True)
            out["widths"][f"{method}-{pct}"] = {"width": int(max(mask.user.max(), mask.item.max())),
                                                "wide_ms": wide, "narrow_ms": narrow}
    out["full_step_ms"] = out["steps"]["lightgcn"]["after_ms"]
    return out


def print_propagation(r: dict, dataset: str) -> None:
    print(f"\n[propagation] {dataset}: {r['nodes']} nodes, {r['nnz']} non-zeros in the adjacency")
    print("  pure SpMM A·X: " + ", ".join(f"width {w}: {ms:.2f} ms" for w, ms in
                                           r["spmm_ms"].items())
          + f"; width 128 in 4 blocks of 32: {r['spmm_128_blocks32_ms']:.2f} ms "
            f"({r['spmm_128_blocks32_ms'] / r['spmm_ms']['128']:.2f}x of one product)")
    print(f"  {'model':9} {'step before':>11} {'step after':>10} {'speed-up':>8} "
          f"{'SpMM work':>9} {'after/work':>10} {'epoch before':>12} {'epoch after':>11}")
    for name, s in r["steps"].items():
        print(f"  {name:9} {s['before_ms']:9.1f}ms {s['after_ms']:8.1f}ms "
              f"{s['before_ms'] / s['after_ms']:7.2f}x {s['spmm_work_ms']:7.1f}ms "
              f"{s['after_ms'] / s['spmm_work_ms']:10.2f} {s['epoch_before_s']:11.2f}s "
              f"{s['epoch_after_s']:10.2f}s")
    print(f"  LightGCN retrain per batch, 128 columns vs the mask's width "
          f"(Full after: {r['full_step_ms']:.1f} ms):")
    print(f"  {'mask':7} {'width':>5} {'128 wide':>9} {'narrowed':>9} {'speed-up':>8} {'Full/this':>9}")
    for label, w in r["widths"].items():
        print(f"  {label:7} {w['width']:5d} {w['wide_ms']:7.1f}ms {w['narrow_ms']:7.1f}ms "
              f"{w['wide_ms'] / w['narrow_ms']:7.2f}x {r['full_step_ms'] / w['narrow_ms']:8.2f}x")


def child(args) -> None:
    manifest = Path(args.manifest)
    if args.child == "suite":
        out = measure_suite(args.model, manifest, args.repeats)
    elif args.child == "propagation":
        out = measure_propagation(manifest, args.repeats)
    elif args.child == "masking":
        out = measure_masking(args.model, manifest, args.recbole_batch, args.repeats)
    else:
        out = measure_recbole(args.child, args.model, manifest, args.recbole_batch,
                              args.recbole_batches, Path(args.workdir), args.repeats)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def run_child(kind, model, manifest, args, workdir) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--model", model, "--manifest", str(manifest),
           "--recbole-batch", str(args.recbole_batch), "--workdir", str(workdir),
           "--repeats", str(args.repeats)]
    if args.recbole_batches:
        cmd += ["--recbole-batches", str(args.recbole_batches)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind}/{model} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k",
                   help="comma list of ml-100k, ml-1m, yelp2018-test (ml-1m/yelp need a mirror)")
    p.add_argument("--models", default="lightgcn,ngcf,neumf")
    p.add_argument("--recbole-batch", type=int, default=2048)
    p.add_argument("--recbole-batches", type=int, default=None,
                   help="time only this many RecBole batches and scale to an epoch")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="epochs timed per measurement (median)")
    p.add_argument("--child", choices=["stock", "masked", "unmasked", "suite", "propagation",
                                       "masking"])
    p.add_argument("--sections", default="recbole,propagation,masking",
                   help="comma list: recbole (stock vs masked vs suite), propagation, masking")
    p.add_argument("--model")
    p.add_argument("--manifest")
    p.add_argument("--workdir")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.child:
        import torch
        torch.set_num_threads(args.threads)
        return child(args)
    workdir = Path(tempfile.mkdtemp(prefix="ciess-bench-"))
    sections = args.sections.split(",")
    for dataset in args.dataset.split(","):
        manifest = prepare_split(dataset, REPO / "results" / "benchmarks" / "data")
        print(f"\n=== dataset {dataset}; {args.threads} threads; RecBole batch {args.recbole_batch}; "
              f"suite batch 10000; workdir {workdir}")
        if "propagation" in sections:
            print_propagation(run_child("propagation", "lightgcn", manifest, args, workdir), dataset)
        if "recbole" in sections:
            print_recbole(manifest, args, workdir)
        if "masking" in sections:
            print_masking(manifest, args, workdir)


def print_recbole(manifest: Path, args, workdir: Path) -> None:
    print(f"{'model':9} {'stock ep s':>10} {'masked ep s':>11} {'unmasked':>9} "
          f"{'masked/stock':>12} {'masked/unm':>10} {'suite ep s':>10} {'suite/stock':>11} "
          f"{'eval s':>7} {'eval/ep':>7} {'RSS MB st/suite':>16}")
    for model in args.models.split(","):
        r = {k: run_child(k, model, manifest, args, workdir)
             for k in ("stock", "masked", "unmasked", "suite")}
        st, ms, um, su = r["stock"], r["masked"], r["unmasked"], r["suite"]
        scaled = " (scaled)" if st.get("scaled") else ""
        print(f"{model:9} {st['epoch_s']:10.2f} {ms['epoch_s']:11.2f} {um['epoch_s']:9.2f} "
              f"{ms['epoch_s'] / st['epoch_s']:12.3f} {ms['epoch_s'] / um['epoch_s']:10.3f} "
              f"{su['epoch_s']:10.2f} {su['epoch_s'] / st['epoch_s']:11.3f} {su['eval_s']:7.2f} "
              f"{su['eval_s'] / su['epoch_s']:7.3f} {st['peak_rss_mb']:7.0f}/{su['peak_rss_mb']:<7.0f}"
              f"{scaled}")
        print(f"  stock RecBole eval {st['eval_s']:.2f}s; raw: " + json.dumps(r), flush=True)

if __name__ == "__main__":
    main()
