"""PyTorch integration: model, optimizer, RNG states and step through a :class:`Checkpointer`.

torch is imported on first use only, so importing this module costs nothing and the SDK
core never depends on it. Tensors are stored with ``torch.save`` and loaded with
``weights_only=True`` (no arbitrary pickles); RNG states of Python and NumPy and the
caller's ``extra`` go to JSON.

Asynchronous saves (``blocking=False``) copy every tensor into reusable host buffers
(pinned when the tensor lives on a GPU), return, and serialise plus fsync in a background
thread; the training loop stalls only for the copy. A new save first waits for the
previous one, so at most one snapshot is in flight and the buffers can be reused.
"""

from __future__ import annotations

import copy
import importlib
import random
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn

from ._checkpointer import Checkpointer
from ._errors import CheckpointError
from ._manifest import finite_json
from ._store import Checkpoint, Verify

TENSORS_FILE = "state.pt"
RNG_FILE = "rng.json"
EXTRA_FILE = "extra.json"


def _torch() -> Any:
    return importlib.import_module("torch")


def _numpy() -> ModuleType | None:
    """NumPy's global RNG matters only if the job imported NumPy (then it is loaded)."""
    return sys.modules.get("numpy")


@dataclass(frozen=True, slots=True)
class _SaveJob:
    step: int
    tensors: dict[str, Any]
    rng: bytes
    extra: bytes
    metadata: Mapping[str, Any] | None
    event_fields: Mapping[str, Any]
    track_interval: bool


@dataclass(frozen=True, slots=True)
class TorchRestored:
    """What :meth:`TorchCheckpointer.restore` loaded."""

    step: int
    extra: Any
    checkpoint: Checkpoint


def capture_rng() -> tuple[dict[str, Any], dict[str, Any]]:
    """RNG states as ``(json part, tensor part)``: Python, NumPy, torch CPU and CUDA."""
    torch = _torch()
    version, internal, gauss = random.getstate()
    as_json: dict[str, Any] = {"python": [version, list(internal), gauss]}
    numpy = _numpy()
    if numpy is not None:
        name, keys, pos, has_gauss, cached = numpy.random.get_state(legacy=True)
        as_json["numpy"] = [name, keys.tolist(), pos, has_gauss, cached]
    tensors: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state_all()
    return as_json, tensors


def restore_rng(as_json: Mapping[str, Any], tensors: Mapping[str, Any]) -> None:
    torch = _torch()
    version, internal, gauss = as_json["python"]
    random.setstate((version, tuple(internal), gauss))
    if "numpy" in as_json:
        numpy = importlib.import_module("numpy")
        name, keys, pos, has_gauss, cached = as_json["numpy"]
        numpy.random.set_state((name, numpy.asarray(keys, dtype="uint32"), pos, has_gauss, cached))
    torch.set_rng_state(tensors["cpu"])
    cuda = tensors.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class _Snapshotter:
    """Copies nested state into host buffers that are kept for the next snapshot."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[Any, ...], Any] = {}
        self._devices: set[Any] = set()

    def copy(self, obj: Any) -> Any:
        """Copy ``obj``; the copies of GPU tensors are complete when this returns."""
        self._devices.clear()
        result = self._copy(obj, ())
        torch = _torch()
        for device in self._devices:  # the copies were queued asynchronously, per device
            torch.cuda.synchronize(device)
        return result

    def _copy(self, obj: Any, key: tuple[Any, ...]) -> Any:
        torch = _torch()
        if isinstance(obj, torch.Tensor):
            return self._tensor(obj, key)
        if isinstance(obj, dict):
            out: Any = type(obj)()
            for k, v in obj.items():
                out[k] = self._copy(v, (*key, k))
            if hasattr(obj, "_metadata"):  # state_dict versions, read by load_state_dict
                out._metadata = copy.deepcopy(obj._metadata)
            return out
        if isinstance(obj, list | tuple):
            return type(obj)(self._copy(v, (*key, i)) for i, v in enumerate(obj))
        if obj is None or isinstance(obj, str | int | float | bool):
            return obj
        return copy.deepcopy(obj)

    def _tensor(self, tensor: Any, key: tuple[Any, ...]) -> Any:
        torch = _torch()
        tensor = tensor.detach()
        on_gpu = bool(tensor.is_cuda)
        buffer = self._buffers.get(key)
        if (
            buffer is None
            or buffer.shape != tensor.shape
            or buffer.dtype != tensor.dtype
            or bool(buffer.is_pinned()) != on_gpu
        ):
            # Pinned memory makes the device-to-host copy a fast asynchronous DMA.
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu", pin_memory=on_gpu)
            self._buffers[key] = buffer
        buffer.copy_(tensor, non_blocking=on_gpu)
        if on_gpu:
            self._devices.add(tensor.device)
        return buffer


class TorchCheckpointer:
    """Save and restore ``model``/``optimizer`` training state with a :class:`Checkpointer`."""

    def __init__(self, checkpointer: Checkpointer | None = None, **options: Any) -> None:
        """``options`` go to :class:`Checkpointer` when none is given."""
        if checkpointer is not None and options:
            raise TypeError("pass either a Checkpointer or options for one, not both")
        self.checkpointer = checkpointer if checkpointer is not None else Checkpointer(**options)
        self.last_stall_s: float | None = None
        """How long the last :meth:`save` kept the caller waiting."""
        self._snapshots = _Snapshotter()
        self._thread: threading.Thread | None = None
        self._result: Checkpoint | None = None
        self._error: BaseException | None = None
        self.checkpointer._before_exit.append(self.wait)

    def save(
        self,
        step: int,
        *,
        model: Any,
        optimizer: Any = None,
        extra: Any = None,
        metadata: Mapping[str, Any] | None = None,
        blocking: bool = True,
    ) -> Checkpoint | None:
        """Save the state at ``step``; with ``blocking=False`` return after the snapshot.

        ``extra`` must be strict JSON (epoch, data-loader position...). Returns the
        checkpoint when blocking, else None (see :meth:`wait`).
        """
        started = time.perf_counter()
        self.wait()
        self._result = None
        extra_json = finite_json(extra)  # refused here, not later in the background
        rng_json, rng_tensors = capture_rng()
        tensors: dict[str, Any] = {"model": model.state_dict(), "rng": rng_tensors}
        if optimizer is not None:
            tensors["optimizer"] = optimizer.state_dict()
        if blocking:
            rng = finite_json(rng_json)
            job = _SaveJob(step, tensors, rng, extra_json, metadata, {"mode": "sync"}, True)
            checkpoint = self._persist(job)
            self.last_stall_s = time.perf_counter() - started
            return checkpoint
        snapshot = self._snapshots.copy(tensors)
        stall = time.perf_counter() - started
        self.last_stall_s = stall
        ckpt = self.checkpointer
        ckpt.interval.record_save(stall, end=ckpt.clock())
        fields = {"mode": "async", "stall_s": stall}
        job = _SaveJob(step, snapshot, finite_json(rng_json), extra_json, metadata, fields, False)
        # Not a daemon: an interpreter exit waits for the checkpoint to be committed.
        self._thread = threading.Thread(
            target=self._background, args=(job,), name=f"ckpt-async-{step}"
        )
        self._thread.start()
        return None

    def wait(self) -> Checkpoint | None:
        """Join the save in flight; re-raise its failure; return what it committed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise CheckpointError(f"asynchronous checkpoint failed: {error}") from error
        return self._result

    @property
    def pending(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _background(self, job: _SaveJob) -> None:
        try:
            self._result = self._persist(job)
        except BaseException as exc:  # handed to the main thread by wait()
            self._error = exc

    def _persist(self, job: _SaveJob) -> Checkpoint:
        torch = _torch()
        with self.checkpointer.save(
            job.step,
            metadata=job.metadata,
            track_interval=job.track_interval,
            event_fields=job.event_fields,
        ) as session:
            with session.open(TENSORS_FILE) as stream:
                torch.save(job.tensors, stream)
            session.write_bytes(RNG_FILE, job.rng)
            session.write_bytes(EXTRA_FILE, job.extra)
        assert session.checkpoint is not None
        return session.checkpoint

    def restore(
        self,
        *,
        model: Any,
        optimizer: Any = None,
        map_location: Any = "cpu",
        rng: bool = True,
        verify: Verify = "full",
    ) -> TorchRestored | None:
        """Load the newest valid checkpoint into ``model``/``optimizer``; None if none."""
        torch = _torch()
        found = self.checkpointer.restore(verify=verify)
        if found is None:
            return None
        # Loaded by path (not read_bytes) to avoid holding the file twice in memory; it was
        # verified a moment ago (see found.verified) and only this job writes the directory.
        tensors = torch.load(found.file(TENSORS_FILE), map_location=map_location, weights_only=True)
        model.load_state_dict(tensors["model"])
        if optimizer is not None:
            optimizer.load_state_dict(tensors["optimizer"])
        if rng:
            restore_rng(found.read_json(RNG_FILE), tensors["rng"])
        return TorchRestored(step=found.step, extra=found.read_json(EXTRA_FILE), checkpoint=found)

    def exit_for_requeue(self) -> NoReturn:
        """Finish the save in flight, then exit with the requeue code."""
        self.checkpointer.exit_for_requeue()


__all__ = [
    "EXTRA_FILE",
    "RNG_FILE",
    "TENSORS_FILE",
    "TorchCheckpointer",
    "TorchRestored",
    "capture_rng",
    "restore_rng",
]
