"""Datasets by name, for commands that take `--data NAME`."""

from sia import SiaError

INPUT_SHAPES = {"digits": (1, 8, 8), "cifar10": (3, 32, 32)}


def load_split(name: str, split: str, data_dir=None):
    """(uint8 images [N,C,H,W], int64 labels) of a named dataset split."""
    if name == "digits":
        from sia.data.digits import load_digits_split
        return load_digits_split(split)
    if name == "cifar10":
        from sia.data.cifar import load_cifar10
        return load_cifar10(split, data_dir or None)
    raise SiaError(f"unknown dataset {name!r}; choose one of {', '.join(INPUT_SHAPES)}")


def data_copy(name: str, data_dir=None) -> str:
    """Which copy of the data a number was measured on."""
    if name == "digits":
        return "sklearn-digits"
    from sia.data.cifar import describe
    return describe(data_dir or None)


def program_test_set(program, data: str | None = None, data_dir=None, limit: int = 0,
                     split: str = "test"):
    """(dataset name, images, labels): the test split a program was trained for (or
    `data`; or its `split`), optionally only its first `limit` images - what every CLI
    command runs."""
    if limit < 0:
        raise SiaError(f"--images {limit}: give a count >= 1 (0 = the whole test set)")
    if split not in ("train", "test"):
        raise SiaError(f"--split {split!r}: choose train or test")
    data = data or program.meta.get("dataset", "digits")
    images, labels = load_split(data, split, data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return data, images, labels
