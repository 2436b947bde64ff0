"""Kedro's pandas CSV and Parquet datasets, saved atomically on local disk: the table is
written to a temporary file beside the target, fsynced and renamed over it, so a killed run
leaves the previous version (or nothing), never half a table that a later run loads."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import CSVDataset, ParquetDataset

from ofa_latency_kedro.atomic import atomic_write


def _local_save_path(dataset: Any) -> str | None:
    if dataset._protocol not in ("file", None):
        return None
    return get_filepath_str(dataset._get_save_path(), dataset._protocol)


class AtomicCSVDataset(CSVDataset):
    """``pandas.CSVDataset`` (same arguments, previews, versioning) with atomic local saves."""

    def save(self, data: pd.DataFrame) -> None:
        path = _local_save_path(self)
        if path is None:  # remote filesystems keep their own semantics
            super().save(data)
            return
        text = data.to_csv(**self._save_args)
        encoding = self._save_args.get("encoding") or "utf-8"
        atomic_write(path, lambda handle: handle.write(text.encode(encoding)))
        self._invalidate_cache()


class AtomicParquetDataset(ParquetDataset):
    """``pandas.ParquetDataset`` (same arguments) with atomic local saves."""

    def save(self, data: pd.DataFrame) -> None:
        path = _local_save_path(self)
        if path is None:
            super().save(data)
            return
        atomic_write(path, lambda handle: data.to_parquet(handle, **self._save_args))
        self._invalidate_cache()
