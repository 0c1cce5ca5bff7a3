"""Turn verified source files into one interaction table with contiguous ids (docs/protocol.md §2).

Output rows keep the source-file order (ML: file order; Yelp2018: train.txt rows then test.txt
rows), which the per-user split relies on. Ids are mapped to 0..U-1 and 0..I-1 in ascending order
of the original id, over the whole dataset.
"""
from __future__ import annotations

import gzip
import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

def read_int_table(source, where: str, columns: dict[str, str], names: list[str] | None = None,
                   sep: str = "\t") -> pd.DataFrame:
    """Read a delimited table and return ``columns`` (source name -> our name) as int64.

    Every error names the file (``where``) and, for bad values, the line: a missing column, a
    file without data rows, a value that is not an integer, a negative id."""
    try:
        df = pd.read_csv(source, sep=sep, header=None if names else "infer", names=names,
                         dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: cannot parse ({exc})") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{where}: the file is empty") from None
    first_line = 1 if names else 2
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; the file has {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{where}: no data rows")
    out = {}
    for col, ours in columns.items():
        values = pd.to_numeric(df[col], errors="coerce")
        bad = (values.isna() | (values != values.round())).to_numpy().copy()
        if ours in ("user", "item"):
            bad |= (values < 0).to_numpy()
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            what = "a non-negative integer id" if ours in ("user", "item") else "an integer"
            raise ValueError(f"{where}:{k + first_line}: column '{col}' must be {what}, got "
                             f"{df[col].iloc[k]!r}")
        out[ours] = values.to_numpy(np.int64)
    return pd.DataFrame(out)


RATING_COLUMNS = {"user": "user", "item": "item", "rating": "rating"}


def _parse_ratings_dat(raw: bytes, where: str) -> pd.DataFrame:
    text = raw.replace(b"::", b"\t")
    return read_int_table(io.BytesIO(text), where, RATING_COLUMNS,
                          names=["user", "item", "rating", "timestamp"])


def parse_movielens(source_dir: Path, form: str, files: list[str]) -> pd.DataFrame:
    (relpath,) = files
    path = source_dir / relpath
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            return _parse_ratings_dat(zf.read("ml-1m/ratings.dat"), f"{path}:ml-1m/ratings.dat")
    if path.name == "ratings.dat":
        return _parse_ratings_dat(path.read_bytes(), str(path))
    if path.name.endswith(".tsv.gz"):
        with gzip.open(path, "rb") as fh:
            return read_int_table(fh, str(path), {"user_id": "user", "item_idx": "item",
                                                  "rating": "rating"})
    if path.suffix == ".inter":
        return read_int_table(path, str(path), {"user_id:token": "user", "item_id:token": "item",
                                                "rating:float": "rating"})
    if path.name == "u.data":
        return read_int_table(path, str(path), RATING_COLUMNS,
                              names=["user", "item", "rating", "ts"])
    raise ValueError(f"{path}: no MovieLens parser for this file name")


def parse_lightgcn_adjacency(source_dir: Path, form: str, files: list[str]) -> pd.DataFrame:
    """``uid item item ...`` per line; files concatenated in catalog order (train, then test)."""
    users, items = [], []
    for relpath in files:
        path = source_dir / relpath
        with open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    ids = [int(p) for p in parts]
                except ValueError as exc:
                    raise ValueError(f"{path}:{lineno}: not an integer list: {line[:80]!r}") from exc
                if min(ids) < 0:
                    raise ValueError(f"{path}:{lineno}: negative id in {line[:80]!r}")
                users.extend([ids[0]] * (len(ids) - 1))
                items.extend(ids[1:])
    return pd.DataFrame({"user": np.asarray(users, np.int64), "item": np.asarray(items, np.int64)})


def parse_user_item_tsv(source_dir: Path, form: str, files: list[str]) -> pd.DataFrame:
    """Tab-separated files with a header row naming a ``user`` and an ``item`` column (other
    columns are ignored; every row is a positive interaction), ``.gz`` read compressed, files
    concatenated in catalog order: the form for datasets of your own (docs/adding_a_dataset.md)."""
    parts = []
    for relpath in files:
        path = source_dir / relpath
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            parts.append(read_int_table(fh, str(path), {"user": "user", "item": "item"}))
    return pd.concat(parts, ignore_index=True)


PARSERS = {"movielens": parse_movielens, "lightgcn_adjacency": parse_lightgcn_adjacency,
           "user_item_tsv": parse_user_item_tsv}


def drop_official_code_first_line(df: pd.DataFrame, dataset: str, entry: dict,
                                  form: str) -> pd.DataFrame:
    """Reproduce an official code's loss of the source file's first line (``header=0``): the
    rating the catalog entry names for this source form (``official_code_first_line``) is
    removed. File-ordered forms must hold it on the first row."""
    lost = entry.get("official_code_first_line") or {}
    if form not in lost:
        raise ValueError(f"{dataset}: data.drop_official_code_first_line is true but the catalog "
                         f"entry names no official_code_first_line for source form '{form}' "
                         f"(it names: {sorted(lost)})")
    user, item = lost[form]
    hit = np.flatnonzero((df["user"].to_numpy() == user) & (df["item"].to_numpy() == item))
    if len(hit) != 1:
        raise ValueError(f"{dataset}: the official code's first rating ({user}, {item}) is not "
                         f"in the '{form}' source exactly once")
    if form.startswith("official") and hit[0] != 0:
        raise ValueError(f"{dataset}: the first line of the '{form}' source is not the rating "
                         f"({user}, {item}) the catalog names")
    return df.drop(index=df.index[hit[0]]).reset_index(drop=True)


def check_published(stats: dict, published: dict, dataset: str, dropped_first: bool) -> None:
    """Compare users, items and interactions with the published counts (catalog ``published``).
    The one documented exception: ``drop_official_code_first_line`` removes one interaction."""
    expected = dict(published)
    if dropped_first and "interactions" in expected:
        expected["interactions"] -= 1
    wrong = {k: (stats[k], v) for k, v in expected.items() if stats.get(k) != v}
    if wrong:
        raise ValueError(f"{dataset}: counts differ from the published ones (ours, published): "
                         f"{wrong}; the source is not the dataset the catalog describes")


def preprocess(raw: pd.DataFrame, drop_duplicates: bool = True) -> tuple[pd.DataFrame, dict]:
    """Positives only, optional de-duplication, contiguous ids by ascending original id."""
    n_raw = len(raw)
    if "rating" in raw:
        raw = raw[raw["rating"] > 0]
    n_dup = int(raw.duplicated(["user", "item"]).sum())
    if n_dup and not drop_duplicates:
        raise ValueError(f"{n_dup} repeated (user, item) pairs with data.drop_duplicates: false: "
                         "the split would put copies of one pair into train and into "
                         "validation/test (a leak); set data.drop_duplicates: true")
    if drop_duplicates and n_dup:
        raw = raw.drop_duplicates(["user", "item"], keep="first")
    user_ids = np.unique(raw["user"].to_numpy())
    item_ids = np.unique(raw["item"].to_numpy())
    table = pd.DataFrame({
        "user_id": np.searchsorted(user_ids, raw["user"].to_numpy()),
        "item_id": np.searchsorted(item_ids, raw["item"].to_numpy()),
    })
    n_users, n_items, n = len(user_ids), len(item_ids), len(table)
    stats = {
        "users": int(n_users), "items": int(n_items), "interactions": int(n),
        "density": n / (n_users * n_items), "raw_rows": int(n_raw),
        "duplicates_found": n_dup, "duplicates_dropped": n_dup if drop_duplicates else 0,
    }
    return table.reset_index(drop=True), stats
