"""Signed IF neurons (program format version 2): the neuron rule at its edges, the golden
simulator against an independent step-by-step reference, declared widths, file format,
fine-tuning, and the SIA backends' refusal."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, finish
from conftest import run_sia as sia
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from sia import SiaError
from sia.convert.finetune import ProgramNet, finetune
from sia.convert.signed import signed_program
from sia.hw.model.fit import check_fits
from sia.hw.params import SIAConfig
from sia.hw.regmap import check_layer
from sia.program import Layer, Program, Synapse, load_program, save_program
from sia.program.bounds import current_range
from sia.program.io import MANIFEST_KEY, read_manifest, to_manifest
from sia.program.random import random_program
from sia.program.validate import validate
from sia.snn import simulate
from sia.snn.neuron import signed_if_step
from sia.zoo import load_zoo_program


def _step(v, i, count, theta=10):
    t = lambda x: torch.tensor([float(x)])  # noqa: E731
    v, s, c = signed_if_step(t(v), t(i), t(theta), t(count))
    return float(v), float(s), float(c)


@pytest.mark.parametrize("v, i, count, expect", [
    (0, 10, 0, (0, 1, 1)),      # fires at equality, as the unsigned neuron
    (0, 25, 3, (15, 1, 4)),     # one spike per step; the excess stays
    (0, -1, 1, (9, -1, 0)),     # V < 0 with a spike to take back: -1, V + theta
    (0, -1, 0, (-1, 0, 0)),     # nothing fired yet: no -1, V stays negative
    (5, -5, 2, (0, 0, 2)),      # V = 0 is not below 0
    (0, -35, 2, (-25, -1, 1)),  # one -1 per step, however negative V is
])
def test_signed_neuron_edges(v, i, count, expect):
    assert _step(v, i, count) == expect


def test_takes_back_the_spikes_an_unsigned_neuron_keeps():
    """The chain of sia diagnose's test: +20 from a source that fires at t = 1, bias -5.
    Unsigned: one spike kept although the total input is 0; signed: taken back."""
    def chain(signed):
        one = lambda x: np.array([x])  # noqa: E731
        a = Layer("a", "if", (1, 1, 1), bias=one(0), v_init=one(9), threshold=one(10),
                  v_bits=64, acc_bits=64, inputs=[Synapse(-1, "dense", np.array([[1]]), 8)])
        b = Layer("b", "if", (1, 1, 1), bias=one(-5), v_init=one(0), threshold=one(10),
                  v_bits=64, acc_bits=64, signed=signed,
                  inputs=[Synapse(0, "dense", np.array([[20]]), 8)])
        out = Layer("out", "integrator", (1, 1, 1), bias=one(0), v_init=one(0), v_bits=64,
                    acc_bits=64, inputs=[Synapse(1, "dense", np.array([[1]]), 2)])
        return finish(Program("chain", (1, 1, 1), levels=4, timesteps=4, t_max=16,
                              layers=[a, b, out], num_classes=1))
    x = torch.ones(1, 1, 1, 1, dtype=torch.uint8)
    un = simulate(chain(False), x, T=4, record=True).traces["b"]
    sg = simulate(chain(True), x, T=4, record=True).traces["b"]
    assert un["spikes"][:, 0, 0, 0, 0].tolist() == [1, 0, 0, 0]
    assert un["v"][:, 0, 0, 0, 0].tolist() == [5, 0, -5, -10]
    # t = 3: V = -5 < 0 with one spike out: -1, V = 5; t = 4: 0
    assert sg["spikes"][:, 0, 0, 0, 0].tolist() == [1, 0, -1, 0]
    assert sg["v"][:, 0, 0, 0, 0].tolist() == [5, 0, 5, 0]
    assert sg["spikes"].dtype == torch.int8


def _reference(program, images, T):
    """Step by step, layer by layer, one neuron rule per kind, in float64: no time
    folding, no shared code with the golden simulator beyond the synapse operation."""
    from sia.snn.synapse import synapse_current
    B = images.shape[0]
    outs, v_out = {}, None
    for i, layer in enumerate(program.layers):
        C, H, W = layer.shape
        v = torch.as_tensor(layer.v_init, dtype=torch.float64)[None, :, None, None].repeat(B, 1, H, W)
        net = torch.zeros_like(v)
        spikes, vs = [], []
        for t in range(T):
            cur = torch.as_tensor(layer.bias, dtype=torch.float64)[None, :, None, None]
            for syn in layer.inputs:
                x = images if syn.source < 0 else outs[syn.source][t]
                cur = cur + synapse_current(syn, x, torch.float64)
            v = v + cur
            if layer.kind == "integrator":
                vs.append(v.reshape(B, -1).clone())
                continue
            th = torch.as_tensor(layer.threshold, dtype=torch.float64)[None, :, None, None]
            s = (v >= th).double()
            if layer.signed:
                s = s - ((v < 0) & (net > 0)).double()
                net = net + s
            v = v - s * th
            spikes.append(s)
        if layer.kind == "integrator":
            v_out = torch.stack(vs).to(torch.int64)
        else:
            outs[i] = spikes
    return v_out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), T=st.integers(1, 8), mask=st.integers(0, 31))
def test_golden_equals_the_reference_and_declared_widths_hold(seed, T, mask):
    """Random programs with any subset of IF layers signed: the golden simulator equals
    the reference, and record=True checks every membrane against its declared width."""
    prog = random_program(seed, timesteps=8)
    for k, layer in enumerate(prog.layers):
        layer.signed = layer.kind == "if" and bool(mask >> k & 1)
    prog = finish(prog)
    validate(prog)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (4, *prog.input_shape), generator=g, dtype=torch.uint8)
    res = simulate(prog, x, T=T, record=True)
    assert torch.equal(res.traces["output_v"], _reference(prog, x, T))
    with torch.no_grad():   # fine-tuning's forward is the same arithmetic
        assert torch.equal(ProgramNet(prog)(x, T).to(torch.int64), res.traces["output_v"])
    for layer in prog.layers:
        if layer.signed:   # the net count never goes negative; both signs are events
            tr = res.traces[layer.name]["spikes"].long()
            assert (tr.cumsum(0) >= 0).all()
            assert res.spikes[layer.name] == int(tr.abs().sum())


def test_signed_source_widens_the_current_range():
    p = signed_program(random_program(3))
    q = random_program(3)
    for i, (a, b) in enumerate(zip(p.layers, q.layers)):
        lo_s, hi_s = current_range(p, a)
        lo_u, hi_u = current_range(q, b)
        spike_fed = any(s.source >= 0 for s in a.inputs)
        assert (lo_s <= lo_u).all() and (hi_s >= hi_u).all()
        if spike_fed:
            assert (lo_s < lo_u).any() or (hi_s > hi_u).any()
        else:
            assert (lo_s == lo_u).all() and (hi_s == hi_u).all()


def test_file_format_versions(tmp_path):
    plain = random_program(1)
    assert to_manifest(plain)[0]["format_version"] == 1        # unchanged for old readers
    assert "signed" not in to_manifest(plain)[0]["layers"][0]
    sp = signed_program(plain)
    f = save_program(sp, tmp_path / "s.safetensors")
    m = read_manifest(f)
    assert m["format_version"] == 2
    back = load_program(f)
    assert [layer.signed for layer in back.layers] == [layer.kind == "if" for layer in sp.layers]
    assert back.name.endswith("_signed") and back.meta["neurons"] == "signed"
    # a version-1 file that claims signed neurons, or a non-boolean flag: refused
    manifest, tensors = to_manifest(sp)
    for version, flag, msg in [(1, True, "need format version 2"), (2, "yes", "must be true or false")]:
        manifest["format_version"] = version
        manifest["layers"][0]["signed"] = flag
        bad = tmp_path / f"bad{version}.safetensors"
        save_file(tensors, str(bad), metadata={MANIFEST_KEY: json.dumps(manifest)})
        with pytest.raises(SiaError, match=msg):
            load_program(bad)


def test_only_if_layers_may_be_signed():
    p = random_program(2)
    p.output.signed = True
    with pytest.raises(SiaError, match="only IF layers can have signed neurons"):
        validate(p)


def test_a_build_without_signed_neurons_refuses_them():
    """Only builds with signed_count_bits run signed programs, for at most 2^bits - 1
    steps per image (the net counts' range): the model's and the packer's checks alike."""
    p = signed_program(load_zoo_program("digits_cnn_l8"))
    for check in (check_fits, lambda p, c, T: check_layer(p, 0, c, T)):
        with pytest.raises(SiaError, match="need a build with signed_count_bits > 0"):
            check(p, SIAConfig(), 8)
        with pytest.raises(SiaError, match=r"count at most 7 spikes .* T=8 > 7"):
            check(p, SIAConfig(pes=32, signed_count_bits=3), 8)
        check(p, SIAConfig(pes=32, signed_count_bits=3), 7)
    with pytest.raises(SiaError, match="signed_count_bits needs pes <= 32"):
        SIAConfig(pes=64, signed_count_bits=4)


def test_finetune_keeps_signed_neurons(keep_threads):
    from sia.data.digits import load_digits_split
    p = signed_program(load_zoo_program("digits_cnn_l8"))
    x, y = load_digits_split("train")
    ft, hist = finetune(p, x[:128], y[:128], T=4, loss_steps=(4,), steps=3, batch_size=32,
                        augment=False, progress=False, neurons=True)
    assert all(layer.signed == (layer.kind == "if") for layer in ft.layers)
    assert len(hist["loss"]) == 3 and np.isfinite(hist["loss"]).all()
    simulate(ft, x[:8], T=4, record=True)   # its declared widths hold


def test_negative_branch_surrogate():
    """[V < 0] forward; backward the mirror of the +1 branch's triangle, around V = 0."""
    from sia.convert.finetune import _NegSpike
    v = torch.tensor([-1.0, -20.0, 5.0, 0.0], requires_grad=True)
    s = _NegSpike.apply(v, torch.tensor(10.0))
    assert s.tolist() == [1.0, 1.0, 0.0, 0.0]
    s.sum().backward()
    assert v.grad.tolist() == pytest.approx([-0.09, 0.0, -0.05, -0.1])


def test_cli_signed_then_eval_and_refusal(tmp_path):
    out = tmp_path / "s.safetensors"
    r = sia("signed", "digits_cnn_l8", "--out", str(out))
    assert r.returncode == 0 and "signed neurons" in r.stdout, r.stderr
    assert load_program(out).signed
    assert_one_line_error(sia("simulate", str(out), "--images", "2"), "signed_count_bits > 0")
    assert_one_line_error(sia("signed", "digits_cnn_l8", "--out", str(tmp_path / "s.json")),
                          "must end in .safetensors")


def test_zoo_command_of_a_signed_stage_repeats_signed():
    """make_zoo.py writes each entry's reproduce command from its eval.json: a signed
    stage must say --signed, or the command would rebuild an unsigned program."""
    from benchmark_common import load_benchmark
    flags = load_benchmark("make_zoo")._stage_flags
    ev = {"T": 8, "signed": True, "finetune": {"steps": 300, "lr": 0.005, "loss_steps": [4, 8],
                                                "batch": 64, "T": 8, "neurons": True}}
    assert flags(ev).startswith(" --signed --finetune 300")
    assert "--signed" not in flags({**ev, "signed": False})
    # another draw of the batch order (--ft-seed) is part of the command too
    assert "--ft-seed" not in flags(ev)
    assert " --ft-seed 1" in flags({**ev, "finetune": {**ev["finetune"], "seed": 1}})
    # and so is a program teaching itself (--ft-self-distill T)
    assert "--ft-self-distill" not in flags(ev)
    assert " --ft-self-distill 8" in flags({**ev, "finetune": {**ev["finetune"],
                                                               "self_distill_T": 8}})
    # and a rate teacher: the flag, and the `sia teacher` command that grew it, first
    rt = {"dir": "runs/t", "from": "zoo_x", "steps": 1200, "batch": 128, "lr": 0.003, "seed": 0,
          "label_smoothing": 0.1, "bf16": True, "compiled": True, "augment": True}
    ev_rt = {**ev, "program": "zoo_x", "qcfs_run": "q", "fp32_run": "f",
             "finetune": {**ev["finetune"], "rate_teacher": rt}}
    assert flags(ev_rt).endswith(" --ft-rate-teacher runs/t --ft-neurons")
    chain = load_benchmark("make_zoo")._stage_chain(Path("runs/eval/x"), ev_rt)
    assert chain.startswith("sia teacher zoo_x --out runs/t --steps 1200 --batch 128 --lr 0.003 "
                            "--seed 0 --label-smoothing 0.1 --bf16 --compile && python "
                            "benchmarks/cifar_snn_eval.py --program zoo_x")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), T=st.integers(1, 8))
@example(seed=7, T=8)   # -1 spikes in three layers that feed others
def test_signed_spikes_projection(seed, T):
    """benchmarks/signed_spikes_estimate.py: the model's outputs are the signed program's
    (golden simulator), its events those of |s| - each launch's cycles are what the
    model gives that launch with the maps |s| as its input - and the model's own golden
    run is restored afterwards."""
    from benchmark_common import load_benchmark

    from sia.hw.model import fast
    from sia.hw.model import run as model_run
    from sia.hw.model import schedule as S
    from sia.hw.model.fast import launch_cycles
    from sia.program.format import IMAGE

    est = load_benchmark("signed_spikes_estimate")
    prog = validate(signed_program(random_program(seed, timesteps=8)))
    x = torch.randint(0, 256, (1, *prog.input_shape), generator=torch.Generator().manual_seed(seed),
                      dtype=torch.uint8)
    cfg = SIAConfig()
    golden = fast.run_batch
    with est.signed_values(prog):
        r = model_run(est.shadow(prog), x, T=T, config=cfg, keep_logits=True)
    assert fast.run_batch is golden
    ref = simulate(prog, x, T=T, record=True)
    assert np.array_equal(r.output_v, ref.traces["output_v"].numpy())
    assert {L.name: L.spikes for L in r.layers} == ref.spikes
    sh = est.shadow(prog)
    total = 0
    for i, layer in enumerate(sh.layers):
        ins = {s.source: (x[0] if s.source == IMAGE else
                          ref.traces[sh.layers[s.source].name]["spikes"][:, 0].abs())
               for s in layer.inputs}
        total += sum(launch_cycles(sh, i, k, ins, T=T, config=cfg)["total"]
                     for k in range(S.tiles(layer, cfg)))
    assert r.image_cycles[0] == total
    with pytest.raises(SiaError, match="has no signed IF layer"):
        est.project(random_program(seed), x, cfg, 1)
