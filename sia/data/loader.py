"""Batches over in-memory uint8 tensors (CPU or a device-resident copy).

Each epoch draws one permutation from a generator seeded with (seed, epoch), so a
run is reproducible and a resumed run sees the same order. Under data parallelism
every rank walks the same global batches and keeps its own contiguous slice, so N
ranks with global batch B see exactly what one process with batch B sees.
"""

import torch

from sia.data.augment import crop_flip


class Batches:
    def __init__(self, images, labels, batch_size: int, shuffle: bool = False, seed: int = 0,
                 augment: bool = False, device="cpu", rank: int = 0, world: int = 1,
                 drop_last: bool = False, channels_last: bool = False):
        if batch_size % world:
            raise ValueError(f"global batch {batch_size} does not split over {world} ranks")
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.shuffle, self.seed, self.augment = batch_size, shuffle, seed, augment
        self.device, self.rank, self.world = torch.device(device), rank, world
        self.drop_last, self.channels_last = drop_last, channels_last
        self.epoch = 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:  # on the global batch, so every rank draws the same numbers
                x = crop_flip(x, gen)
            if self.world > 1:
                lo = self.rank * len(idx) // self.world
                hi = (self.rank + 1) * len(idx) // self.world
                x, idx = x[lo:hi], idx[lo:hi]
            x = x.float().div_(255)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
