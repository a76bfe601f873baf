"""The validated training data as an Arrow IPC file: how the cycle's one load reaches the
training process.

The cycle loads and validates the data once (data.py); the training child used to read and
validate the same file again (on the demo data that second load was ~0.4 s of a ~4 s cycle, and
at 10 M rows a second full copy of the data). Instead the parent writes its validated frame
here, in the cycle's work folder, and the child reads it back: no parsing, no checks, the exact
rows the fingerprint describes. The file is written in record batches, so a large one can also
be streamed batch by batch (batches.py) instead of loaded whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from clm_tray.core.ml.data import DataFingerprint, Dataset

SUFFIX = ".arrow"
#: Rows per record batch: ~90 MB of 22 float32 features; the unit of streaming.
BATCH_ROWS = 1 << 20
_META = b"clm_tray.dataset"


def write_prepared(dataset: Dataset, path: Path) -> Path:
    """Write ``dataset`` (frame, features, target, fingerprint, warnings) to ``path``."""
    frame = dataset.frame
    columns = {"timestamp": pa.Array.from_pandas(frame["timestamp"]),
               "symbol": pa.DictionaryArray.from_pandas(pd.Categorical(frame["symbol"]))}
    for col in dataset.features:
        columns[col] = pa.array(frame[col].to_numpy(), from_pandas=False)
    columns[dataset.target] = pa.array(frame[dataset.target].to_numpy())
    table = pa.table(columns)
    meta = {"features": list(dataset.features), "target": dataset.target,
            "fingerprint": asdict(dataset.fingerprint), "warnings": list(dataset.warnings),
            "inf_count": dataset.inf_count, "duplicates_dropped": dataset.duplicates_dropped}
    table = table.replace_schema_metadata({_META: json.dumps(meta).encode("utf-8")})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=BATCH_ROWS)
    os.replace(tmp, path)
    return path


def read_meta(path: Path | str) -> dict:
    """The dataset's description stored with the file (features, target, fingerprint...)."""
    with pa.OSFile(str(path), "rb") as source:
        schema = ipc.open_file(source).schema
    return json.loads(schema.metadata[_META].decode("utf-8"))


def read_prepared(path: Path | str) -> Dataset:
    """The whole file as a ``Dataset`` again. Read, not memory-mapped: the cycle deletes the
    file while the frame lives on (which Windows refuses for a mapped file)."""
    with pa.OSFile(str(path), "rb") as source:
        reader = ipc.open_file(source)
        meta = json.loads(reader.schema.metadata[_META].decode("utf-8"))
        table = reader.read_all()
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    # Arrow's allocator keeps what the conversion freed: ~1 GB at 10 M rows, held while the
    # cycle profiles and shadow-tests (it was the cycle's peak after training). Give it back.
    pa.default_memory_pool().release_unused()
    frame["symbol"] = frame["symbol"].astype(object)
    return Dataset(frame=frame, features=meta["features"], target=meta["target"],
                   fingerprint=DataFingerprint(**meta["fingerprint"]),
                   warnings=meta["warnings"], inf_count=meta["inf_count"],
                   duplicates_dropped=meta["duplicates_dropped"])
