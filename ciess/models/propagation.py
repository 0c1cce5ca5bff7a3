"""Graph propagation with the normalised adjacency Â = D^-1/2 A D^-1/2, at the bandwidth limit.

``torch.sparse.mm(Â, X)`` under autograd differentiates through a general sparse product, whose
backward transposes and re-sorts the sparse operand every step (measured on ML-1M, 1M non-zeros,
3 LightGCN layers forward + backward: 767 ms). The gradient with respect to X is just Âᵀ·G, and Â
is symmetric, so ``SparseProduct`` runs the backward as one more forward product with a matrix it
is handed (131 ms for the same work; ``benchmarks/speed.py`` prints the current ratio).

NGCF's node dropout zeroes entries of Â independently, which breaks the symmetry. ``Adjacency``
keeps the CSR structure (a dropped entry keeps its slot with value 0) and a precomputed permutation
``transpose_order`` that lists, for every stored (i, j), the slot of (j, i). The transpose of a
dropped matrix is then the same CSR arrays with the values gathered through that permutation: no
sort, no allocation of indices per step.

Splitting the columns of X into cache-sized blocks was measured (32 or 16 columns per product at
widths 128/64/25) and gave no consistent gain on this machine (within ±7%), so it is not done.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class SparseProduct(torch.autograd.Function):
    """Y = A·X with dY/dX applied as Aᵀ·G, where Aᵀ is given (A itself when A is symmetric).

    A and Aᵀ are constants (no gradient flows to them)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_x = torch.sparse.mm(ctx.a_t, grad.contiguous()) if ctx.needs_input_grad[2] else None
        return None, None, grad_x


def bipartite_adjacency_scipy(train: sp.csr_matrix) -> sp.csr_matrix:
    """A, the 0/1 adjacency of the user-item bipartite graph (users first), float32 CSR."""
    n_users, n_items = train.shape
    coo = train.tocoo()
    rows = np.concatenate([coo.row, coo.col + n_users])
    cols = np.concatenate([coo.col + n_users, coo.row])
    n = n_users + n_items
    a = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    return a


def normalized_adjacency_scipy(train: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the user-item bipartite graph (users first), as RecBole's
    ``get_norm_adj_mat`` computes it: sorted CSR, float32."""
    a = bipartite_adjacency_scipy(train)
    deg = np.asarray((a > 0).sum(axis=1)).ravel() + 1e-7
    d = sp.diags(np.power(deg, -0.5))
    lap = (d @ a @ d).tocsr().astype(np.float32)
    lap.sort_indices()
    return lap


def row_normalized_with_self_loops_scipy(train: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1 (A + I) of the user-item bipartite graph (users first), D the row sums of A + I:
    the NGCF propagation matrix of the CIESS authors' code (``ImplicitCF.create_norm_adj_mat``
    for ``ngcf``). Its pattern is symmetric, its values are not."""
    a = bipartite_adjacency_scipy(train)
    a = (a + sp.eye(a.shape[0], dtype=np.float32, format="csr")).tocsr()
    inv = 1.0 / np.asarray(a.sum(axis=1)).ravel()
    p = (sp.diags(inv.astype(np.float32)) @ a).tocsr().astype(np.float32)
    p.sort_indices()
    return p


class Adjacency(torch.nn.Module):
    """A normalised adjacency as a torch CSR tensor, with products and node dropout.

    ``operands(p)`` returns the (matrix, transpose) pair for ``SparseProduct``: Â twice when its
    values are symmetric (the cheap symmetric backward), or with node dropout ``p > 0`` Â with
    each stored entry kept with probability 1 - p and scaled by 1 / (1 - p) (RecBole's
    ``SparseDropout`` semantics) and its transpose. A matrix whose pattern is symmetric but whose
    values are not (D^-1 (A + I)) gets its transpose the same way, by the slot permutation.
    The arrays are
    non-persistent buffers: they follow the model's ``.to(device)`` and stay out of its state dict.
    """

    def __init__(self, lap: sp.csr_matrix):
        super().__init__()
        lap = lap.tocsr()
        pattern = lap.copy()
        pattern.data[:] = 1.0
        if lap.shape[0] != lap.shape[1] or (pattern != pattern.T).nnz:
            raise ValueError("Adjacency needs a square matrix with a symmetric pattern")
        self.symmetric = not (lap != lap.T).nnz
        lap.sort_indices()
        n = lap.shape[0]
        self.shape = lap.shape
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(lap.indptr))
        # the slot of (j, i) for every slot (i, j): slots sorted by (column, row) = CSR of Aᵀ
        order = np.lexsort((rows, lap.indices))
        # 32-bit indices where they fit: the sparse kernels take them as they are (64-bit ones
        # are converted on every product: 0.5 ms of 8.5 ms on ML-1M)
        index = np.int32 if lap.nnz < 2 ** 31 - 1 else np.int64
        for name, array in (("crow", lap.indptr.astype(index)),
                            ("col", lap.indices.astype(index)),
                            ("values", lap.data.astype(np.float32)), ("transpose_order", order),
                            # Aᵀ's values in the same slots, once (None: A is its own transpose)
                            ("values_t", None if self.symmetric
                             else lap.data.astype(np.float32)[order])):
            self.register_buffer(name, None if array is None
                                 else torch.from_numpy(np.ascontiguousarray(array)),
                                 persistent=False)

    @classmethod
    def from_interactions(cls, train: sp.csr_matrix) -> "Adjacency":
        return cls(normalized_adjacency_scipy(train))

    @classmethod
    def row_normalized_with_self_loops(cls, train: sp.csr_matrix) -> "Adjacency":
        return cls(row_normalized_with_self_loops_scipy(train))

    def csr(self, values: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col,
                                       self.values if values is None else values, self.shape,
                                       check_invariants=False)  # built once from a checked CSR

    def operands(self, dropout: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        if not dropout:
            a = self.csr()
            return (a, a) if self.symmetric else (a, self.csr(self.values_t))
        keep = 1.0 - dropout
        kept = torch.rand(self.values.shape, device=self.values.device) < keep
        values = self.values * kept / keep
        return self.csr(values), self.csr(values[self.transpose_order])


class _StockView:
    """A model as RecBole's own ``forward`` sees it: ``norm_adj_matrix`` a plain sparse tensor."""

    def __init__(self, model, adjacency: torch.Tensor):
        self._model, self.norm_adj_matrix, self.eye_matrix = model, adjacency, None

    def __getattr__(self, name):
        return getattr(self._model, name)


def stock_forward(model, recbole_class, layout=torch.sparse_csr):
    """RecBole's own ``recbole_class.forward`` on ``model``'s weights, propagating with
    ``torch.sparse.mm`` under plain autograd (what ``SparseProduct`` replaces): the reference of
    the equality tests and the "before" of ``benchmarks/speed.py``. Returns a callable."""
    a = model.norm_adj_matrix.csr()
    a = a if layout == torch.sparse_csr else a.to_sparse_coo().coalesce()
    a = a.to(model.norm_adj_matrix.values.dtype)
    view = _StockView(model, a)
    return lambda: recbole_class.forward(view)
