import pytest
import torch
from torch import nn

import sia.models as models
from sia import SiaError
from sia.convert import convert
from sia.models.blocks import ConvUnit, LinearUnit, make_act
from sia.snn import simulate


def _calibrated(arch, **kw):
    torch.manual_seed(0)
    net = models.build_model(arch, **kw)
    shape = (1, 8, 8) if arch == "digits_cnn" else (3, 16, 16)
    if arch == "resnet18":
        net[-3] = nn.AvgPool2d(2)              # 16x16 input: the final map is 2x2
    net.train()
    with torch.no_grad():                      # BN statistics of random data
        for _ in range(3):
            net(torch.rand(16, *shape))
    return net.eval(), shape


def test_convert_digits_and_resnet():
    for arch, kw in [("digits_cnn", {}), ("resnet18", {"width": 0.0625, "num_classes": 10})]:
        net, shape = _calibrated(arch, **kw)
        p = convert(net, shape, name=arch)
        x = torch.randint(0, 256, (4, *shape), dtype=torch.uint8)
        r = simulate(p, x, T=4)
        assert r.predictions.shape == (4, 4)
        if arch == "resnet18":
            ops = {s.op for layer in p.layers for s in layer.inputs}
            assert {"conv", "identity", "dense"} <= ops


def test_converted_snn_tracks_quantised_ann():
    """At large T the SNN's rates approach the QCFS ANN: the integrator's scores per
    step correlate with the ANN logits."""
    net, shape = _calibrated("digits_cnn")
    p = convert(net, shape)
    x = torch.randint(0, 256, (64, *shape), dtype=torch.uint8)
    with torch.no_grad():
        ann = net(x.float() / 255)
    snn = simulate(p, x, T=16, record=True).traces["output_v"][-1].double()
    c = torch.corrcoef(torch.stack([ann.flatten().double(), snn.flatten()]))[0, 1]
    assert c > 0.8


def test_unsupported_layers_are_named():
    cases = [
        (nn.Sequential(nn.Conv2d(1, 4, 3)), "module 0 (Conv2d)"),
        (nn.Sequential(ConvUnit(1, 4, act=make_act("qcfs")), nn.MaxPool2d(2), nn.Flatten(),
                       LinearUnit(64, 10)), "module 1 (MaxPool2d)"),
        (nn.Sequential(ConvUnit(1, 4, act=nn.ReLU()), nn.Flatten(), LinearUnit(256, 10)),
         "ReLU cannot be converted"),
        (nn.Sequential(ConvUnit(1, 4, act=make_act("qcfs"), weight_bits=None), nn.Flatten(),
                       LinearUnit(256, 10)), "not quantised"),
        (nn.Sequential(ConvUnit(1, 4, act=make_act("qcfs")), nn.Flatten(),
                       LinearUnit(256, 10), nn.ReLU()), "linear layer is only supported"),
    ]
    for net, msg in cases:
        with pytest.raises(SiaError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            convert(net.eval(), (1, 8, 8))


def test_conversion_units():
    """Threshold = theta / U and v_init = threshold // 2, U = s * u_in / p^2."""
    net, shape = _calibrated("digits_cnn")
    p = convert(net, shape)
    conv0 = p.layers[0]
    assert (conv0.v_init == conv0.threshold // 2).all()
    assert conv0.inputs[0].weight.max() <= 127 and conv0.inputs[0].weight_bits == 8
    assert p.layers[1].inputs[0].weight_bits == 4 and p.layers[1].inputs[0].pool == 2


def test_bias_calibration_is_independent_of_the_chunk_size():
    """Calibration sums integers over all images: chunking (for memory) changes nothing,
    and only biases (integers) move."""
    import numpy as np

    from sia.convert.calibrate import calibrate_bias
    from sia.data.registry import load_split
    from sia.program.resolve import resolve_program
    p = resolve_program("digits_cnn_l8")
    x, _ = load_split("digits", "train")
    x = x[:40]
    whole = calibrate_bias(p, x, T=4, progress=False, chunk=40)
    parts = calibrate_bias(p, x, T=4, progress=False, chunk=7)
    moved = 0
    for a, b, orig in zip(whole.layers, parts.layers, p.layers):
        np.testing.assert_array_equal(a.bias, b.bias)
        assert a.bias.dtype == np.int64
        moved += int((a.bias != orig.bias).sum())
        for sa, so in zip(a.inputs, orig.inputs):
            np.testing.assert_array_equal(sa.weight, so.weight)
    assert moved > 0 and whole.meta["bias_calibration"] == {"images": 40, "T": 4}


def test_channels_last_model_gives_the_same_program_file(tmp_path):
    """A GPU-trained (channels_last) model's weights are strided views; the program
    and its file must not depend on the memory layout."""
    import numpy as np
    from sia.program import load_program, save_program

    net, shape = _calibrated("resnet18", width=0.0625, num_classes=10)
    ref = convert(net, shape, name="r")
    cl = convert(net.to(memory_format=torch.channels_last), shape, name="r")
    back = load_program(save_program(cl, tmp_path / "cl.safetensors"))
    pairs = [(a, b, c) for la, lb, lc in zip(ref.layers, cl.layers, back.layers)
             for a, b, c in zip(la.inputs, lb.inputs, lc.inputs)]
    assert any(a.weight.ndim == 4 and a.weight.shape[2] > 1 for a, _, _ in pairs)
    for a, b, c in pairs:
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.weight, c.weight)
