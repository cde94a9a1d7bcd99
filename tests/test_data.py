"""revsnn.data: fixed stratified splits, normalisation, user-file formats and their error messages."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from revsnn.data import (DATA_DIR_ENV, ShardSampler, dataset_info, load_dataset, make_loader,
                         set_epoch, stratified_split)



pytestmark = pytest.mark.usefixtures("one_thread")

def _labels(ds) -> np.ndarray:
    return ds.targets.numpy()


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def test_mnist_split_is_fixed_stratified_4000_1000(mnist):
    train, test = mnist
    assert (len(train), len(test)) == (4000, 1000)
    assert np.bincount(_labels(train)).tolist() == [400] * 10
    assert np.bincount(_labels(test)).tolist() == [100] * 10
    train2, test2 = load_dataset("mnist")     # one thread here, the fixture used the default
    assert torch.equal(train.images, train2.images) and torch.equal(test.targets, test2.targets)
    x, y = train[0]
    assert tuple(x.shape) == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_mnist_train_and_test_images_are_disjoint(mnist):
    train, test = mnist
    tr = {bytes(row) for row in train.images.flatten(1).numpy()}
    assert not any(bytes(row) in tr for row in test.images.flatten(1).numpy())


def test_normalisation_uses_training_statistics(mnist):
    train, test = mnist
    assert_close(train.images.mean().item(), 0.0, atol=1e-4, rtol=0)
    assert_close(train.images.std().item(), 1.0, atol=1e-3, rtol=0)
    assert abs(test.images.mean().item()) < 0.1            # same transform, different images
    raw_train, _ = load_dataset("mnist", normalize=False)
    assert raw_train.images.min() == 0.0 and raw_train.images.max() == 1.0
    # standardised = (raw − μ_train) / σ_train, elementwise
    mu, sd = raw_train.images.mean(), raw_train.images.std()
    assert_close(train.images, (raw_train.images - mu) / sd, atol=1e-4, rtol=1e-4)


def test_digits_split_is_20_percent_of_each_class_of_sklearn_digits():
    from sklearn.datasets import load_digits
    digits = load_digits()
    counts = np.bincount(digits.target)
    raw, _ = load_dataset("digits", normalize=False)        # the same pixels as load_digits()
    tr, _ = stratified_split(digits.target, 0.2)
    assert_close(raw.images.flatten(1), torch.from_numpy(digits.data[tr] / 16.0).float())
    assert torch.equal(raw.targets, torch.from_numpy(digits.target[tr]))
    train, test = load_dataset("digits")
    assert np.bincount(_labels(test)).tolist() == [int(round(0.2 * c)) for c in counts]
    assert np.bincount(_labels(train)).tolist() == [c - int(round(0.2 * c)) for c in counts]
    assert (len(train), len(test)) == (1438, 359) and tuple(train[0][0].shape) == (1, 8, 8)


def test_stratified_split_is_pure_disjoint_and_complete():
    labels = np.repeat(np.arange(3), [10, 20, 5])
    tr, te = stratified_split(labels, 0.2, seed=7)
    tr2, te2 = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(tr, tr2) and np.array_equal(te, te2)
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(labels)))
    assert np.bincount(labels[te]).tolist() == [2, 4, 1]
    _, te_other = stratified_split(labels, 0.2, seed=8)
    assert not np.array_equal(te, te_other)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.5)


def test_unknown_dataset_is_a_clear_value_error():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*mnist"):
        load_dataset("imagenet")


def test_missing_cifar_dir_names_the_path_and_the_source(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", where)
    text = str(err.value)
    assert str(where / "cifar-10-batches-py" / "data_batch_1") in text
    assert "cs.toronto.edu/~kriz/cifar.html" in text and "tar xzf" in text
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        load_dataset("cifar100", where)


def test_no_data_dir_at_all_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        load_dataset("cifar10")


def _write_cifar(root, name: str, n: int, num_classes: int, rng):
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        files, key = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
    else:
        base = root / "cifar-100-python"
        files, key = ["train", "test"], b"fine_labels"
    base.mkdir(parents=True)
    for f in files:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             key: rng.integers(0, num_classes, n).tolist()}
        with open(base / f, "wb") as fh:
            pickle.dump(d, fh)
    return base


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_python_pickles_are_read_and_normalised(tmp_path, name, classes):
    rng = np.random.default_rng(0)
    base = _write_cifar(tmp_path, name, 6, classes, rng)
    train, test = load_dataset(name, tmp_path)
    n_train = 30 if name == "cifar10" else 6
    assert (len(train), len(test)) == (n_train, 6)
    assert tuple(train[0][0].shape) == (3, 32, 32)
    assert_close(train.images.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    # the first training image is the first row of the first file, channel-major 3×32×32
    first = "data_batch_1" if name == "cifar10" else "train"
    with open(base / first, "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"][0]
    raw_train, _ = load_dataset(name, base, normalize=False)          # data_dir = the folder itself
    assert_close(raw_train.images[0], torch.from_numpy(raw.reshape(3, 32, 32) / 255.0).float())


def _write_dvs(root, T: int, per_class: int = 2, size: int = 8):
    base = root / f"frames_number_{T}_split_by_number"
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for label in (0, 3):
            (base / split / str(label)).mkdir(parents=True)
            for i in range(per_class):
                frames = rng.integers(0, 3, (T, 2, size, size)).astype(np.float32)
                np.savez_compressed(base / split / str(label) / f"s{i}.npz", frames=frames)
    return base


def test_dvs128_frame_layout_is_read_with_labels_from_folders(tmp_path):
    base = _write_dvs(tmp_path, T=4)
    train, test = load_dataset("dvs128", tmp_path, frames=4)
    assert len(train) == 4 and len(test) == 4
    assert sorted(train.targets.tolist()) == [0, 0, 3, 3]
    x, y = train[0]
    assert tuple(x.shape) == (4, 2, 8, 8) and x.dtype == torch.float32
    z = np.load(base / "train" / "0" / "s0.npz")["frames"]
    assert_close(x, torch.from_numpy(z))
    small, _ = load_dataset("dvs128", tmp_path, frames=4, size=4)   # block sums keep the counts
    assert_close(small[0][0].sum(), x.sum())
    assert dataset_info("dvs128", size=4).image_size == 4


def test_dvs128_missing_frames_say_where_and_how(tmp_path):
    _write_dvs(tmp_path, T=4)
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("dvs128", tmp_path, frames=16)          # no T = 16 folder
    text = str(err.value)
    assert str(tmp_path / "frames_number_16_split_by_number" / "train") in text
    assert "frames_number=16" in text and "DvsGesture.tar.gz" in text


def test_train_loader_order_depends_only_on_seed_and_epoch():
    ds = torch.utils.data.TensorDataset(torch.arange(20.0), torch.arange(20))

    def order(seed, epoch):
        loader = make_loader(ds, 5, train=True, seed=seed)
        set_epoch(loader, epoch, seed)
        return torch.cat([y for _, y in loader]).tolist()

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2) and order(0, 1) != order(1, 1)
    assert sorted(order(0, 3)) == list(range(20))


def test_shard_sampler_visits_every_item_once_without_padding():
    shards = [list(ShardSampler(7, r, 3)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(7))
    assert [len(ShardSampler(7, r, 3)) for r in range(3)] == [3, 2, 2]
