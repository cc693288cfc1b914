"""The integer QCFS ANN implied by a program (the "quantised ANN" of the theory).

Each if-layer outputs a level n in 0..L:
    n = clip(floor((sum q * a + L * bias + v_init) / threshold), 0, L)
where a = L * pixel for image inputs and a = n_source for spike inputs. An IF neuron
with the same integers, driven by a constant input for T = L steps, fires exactly n
times (docs/semantics.md); the tests check this equality.
"""

import torch

from sia.program.format import IMAGE, Program
from sia.snn.synapse import synapse_current


def ann_levels(program: Program, images) -> dict[str, torch.Tensor]:
    """Levels of every if-layer and the integrator's L-scaled scores, per image."""
    L = program.levels
    images = torch.as_tensor(images)
    outs: dict[int, torch.Tensor] = {}
    levels = {}
    for i, layer in enumerate(program.layers):
        z = torch.as_tensor(layer.bias, dtype=torch.int64)[None, :, None, None] * L
        for syn in layer.inputs:
            a = images.to(torch.int64) * L if syn.source == IMAGE else outs[syn.source]
            z = z + synapse_current(syn, a, torch.float64).to(torch.int64)
        z = z + torch.as_tensor(layer.v_init)[None, :, None, None]
        if layer.kind == "if":
            th = torch.as_tensor(layer.threshold)[None, :, None, None]
            outs[i] = torch.clamp(torch.div(z, th, rounding_mode="floor"), 0, L)
            levels[layer.name] = outs[i]
        else:
            levels[layer.name] = z.flatten(1)
    return levels


def ann_predict(program: Program, images, batch_size: int = 500) -> torch.Tensor:
    """Class predictions, `batch_size` images at a time (every layer's levels of the
    whole batch are held: 10,000 CIFAR images of a width-0.5 ResNet-18 needed ~15 GB)."""
    images = torch.as_tensor(images)
    name = program.output.name
    if not images.shape[0]:
        return torch.zeros(0, dtype=torch.int64)
    return torch.cat([ann_levels(program, images[k:k + batch_size])[name].argmax(-1)
                      for k in range(0, images.shape[0], batch_size)])
