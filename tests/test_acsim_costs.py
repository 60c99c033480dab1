"""The mapper and the cost model against hand calculation.

Synthetic counts, no simulator: 100 source neurons (host-driven) spike a known
pattern into 50 dense neurons, so every count and every nanosecond can be
worked out on paper from the target's YAML numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from snncc.backends.acsim.costs import estimate, paper_energy
from snncc.backends.acsim.counts import LayerCounts, OpCounts, SimCounts
from snncc.diagnostics import SnnccError
from snncc.lower import HOST, ChipLayer, Synapses
from snncc.passes.map_cores import CorePlacement, LayerPlacement, Mapping, map_to_cores
from snncc.targets import load_target

N_IN, N_OUT, T = 100, 50, 2
IN_SPIKES = [10, 30]  # source spikes per step (neurons 0..k-1)
OUT_SPIKES = [0, 5]

SRC = ChipLayer("in_lif", "enc.lif", "neuron", (N_IN,),
                (Synapses("enc", (HOST,), "dense", 1, N_IN, N_IN),))
DST = ChipLayer("out_lif", "fc.lif", "neuron", (5, 10),
                (Synapses("fc", ("in_lif",), "dense", N_IN, N_IN * N_OUT, N_IN * N_OUT),))


def _counts(batch: int = 2) -> SimCounts:
    """Every sample of the batch identical, so per-inference counts are the batch-1 ones."""
    s_in = np.zeros((T, N_IN), np.int64)
    s_out = np.zeros((T, N_OUT), np.int64)
    for t in range(T):
        s_in[t, :IN_SPIKES[t]] = 1
        s_out[t, :OUT_SPIKES[t]] = 1
    sops_out = np.array(IN_SPIKES, np.int64)[:, None] * np.ones((1, N_OUT), np.int64)
    layers = {
        "in_lif": LayerCounts(SRC, np.zeros((T, N_IN), np.int64), s_in * batch, s_in * batch),
        "out_lif": LayerCounts(DST, sops_out * batch, s_out * batch,
                               np.full((T, N_OUT), batch, np.int64)),
    }
    ops = {
        "enc": OpCounts("enc", "enc", "host-encoding", np.zeros(T, np.int64), 7000 * batch),
        "fc": OpCounts("fc", "fc", "chip", np.array(IN_SPIKES) * N_OUT * batch, 0),
        "head": OpCounts("head", "head", "host-readout", np.zeros(T, np.int64), 500 * batch),
    }
    return SimCounts(T, batch, layers, ops)


def _layer(name: str, n: int, fan_in: int, synapses: int) -> ChipLayer:
    return ChipLayer(name, f"m.{name}", "neuron", (n,),
                     (Synapses("w", (), "dense", fan_in, synapses, synapses),))


# ----- mapping ---------------------------------------------------------------------------


def test_small_layers_take_one_core_each_on_tile_zero() -> None:
    m = map_to_cores([SRC, DST], load_target("loihi2"))
    assert [(c.core, c.start, c.stop, c.tile, c.x, c.y) for _, c in m.cores] == [
        (0, 0, 100, 0, 0, 0), (1, 0, 50, 0, 0, 0)]
    assert m.cores_used == 2 and m.tiles_used == 1


def test_layer_too_big_for_a_core_splits_into_fewest_equal_chunks() -> None:
    # loihi2: 8192 neurons per core -> 20000 neurons need ceil(20000/8192) = 3 cores
    m = map_to_cores([_layer("big", 20000, 1, 20000)], load_target("loihi2"))
    lp = m.layers["big"]
    assert [c.neurons for c in lp.cores] == [6666, 6667, 6667]
    assert lp.cores[0].start == 0 and lp.cores[-1].stop == 20000
    assert lp.limited_by == "neurons"


def test_synaptic_memory_limits_neurons_per_core() -> None:
    # loihi1: 131072 B per core, 8 magnitude bits + sign -> 2 B per synapse.
    # 400 synapses per neuron = 800 B -> floor(131072 / 800) = 163 neurons per core,
    # so 1000 neurons need ceil(1000 / 163) = 7 cores.
    t = load_target("loihi1")
    assert t.formats is not None and t.limits is not None
    per_neuron_bytes = 400 * -(-(t.formats.weight_bits + 1) // 8)
    assert per_neuron_bytes == 800
    m = map_to_cores([_layer("wide", 1000, 400, 400 * 1000)], t)
    lp = m.layers["wide"]
    assert lp.per_core_limit == t.limits.synaptic_memory_bytes_per_core // per_neuron_bytes == 163
    assert len(lp.cores) == 7 and lp.limited_by == "synaptic memory"
    assert max(c.neurons for c in lp.cores) <= 163


def test_tiles_are_row_major_over_the_mesh() -> None:
    # loihi1: 1024 neurons/core, 4 cores/tile, 8 tiles per row: core 37 -> tile 9 -> (1, 1)
    m = map_to_cores([_layer("wide", 38 * 1024, 1, 38 * 1024)], load_target("loihi1"))
    c = m.layers["wide"].cores[37]
    assert (c.core, c.tile, c.x, c.y) == (37, 9, 1, 1)


def test_fan_in_too_large_names_the_numbers() -> None:
    layer = _layer("block.0.mlp.mlp1_lif", 10, 5000, 50000)
    with pytest.raises(SnnccError) as e:
        map_to_cores([layer], load_target("loihi2"))
    d = e.value.diagnostic
    assert d.code == "SNN-MAP001"
    assert "reads 5000 inputs, 904 more than the 4096 fan-in" in d.message
    assert d.location.node == "block.0.mlp.mlp1_lif" and d.location.module_path == "m." + layer.name
    assert d.hint is not None and "4096" in d.hint


def test_one_neuron_larger_than_core_memory() -> None:
    # a loihi1 whose cores hold 4000 B: a neuron with 4000 synapses x 2 B = 8000 B fits nowhere
    t = load_target("loihi1")
    assert t.limits is not None
    small = t.limits.model_copy(update={"synaptic_memory_bytes_per_core": 4000})
    with pytest.raises(SnnccError) as e:
        map_to_cores([_layer("fat", 2, 4000, 2 * 4000)], t.model_copy(update={"limits": small}))
    assert e.value.code == "SNN-MAP002"
    assert "8000 bytes (4000 synapses x 2 bytes), 4000 more than the 4000 bytes" in str(e.value)


def _one_chip(name: str = "loihi2"):  # type: ignore[no-untyped-def]
    t = load_target(name)
    assert t.limits is not None
    return t.model_copy(update={"limits": t.limits.model_copy(update={"chips": 1})})


def test_too_many_cores_for_the_target() -> None:
    layers = [_layer(f"l{i}", 10, 1, 10) for i in range(140)]  # layers never share a core
    with pytest.raises(SnnccError) as e:
        map_to_cores(layers, _one_chip())
    d = e.value.diagnostic
    assert d.code == "SNN-MAP005"
    assert "needs 2 chips (140 cores, 1400 neurons), 1 more than the 1 chip" in d.message
    assert "(120 cores); layer l120 is the first that does not fit" in d.message
    assert d.location.node == "l120"
    assert d.hint is not None and "the first 120 of 140 layers fit" in d.hint
    assert "chips: 2" in d.hint


def test_layers_spill_over_chips_and_a_layer_may_span_two() -> None:
    """loihi2 is an 8-chip board: 120 usable cores per chip, numbered on over chips;
    tiles count on, x/y restart on each chip's mesh."""
    layers = [_layer(f"l{i}", 10, 1, 10) for i in range(119)] + [_layer("big", 3 * 8192, 1, 1)]
    m = map_to_cores(layers, load_target("loihi2"))
    big = m.layers["big"].cores
    assert [(c.core, c.chip) for c in big] == [(119, 0), (120, 1), (121, 1)]
    assert (big[1].tile, big[1].x, big[1].y) == (32, 0, 0)  # 32 tiles per chip
    assert m.chips_used == 2


def test_chip_neuron_and_synapse_totals_start_the_next_chip() -> None:
    t = load_target("loihi1")
    assert t.limits is not None
    small = t.limits.model_copy(update={"max_neurons_per_chip": 2500, "max_synapses_per_chip": 4000,
                                        "chips": 4})
    costs = t.costs.model_copy(update={"chip_link": t.costs.hop_east_west}) if t.costs else None
    four = t.model_copy(update={"limits": small, "costs": costs})
    m = map_to_cores([_layer("a", 2000, 1, 2000), _layer("b", 1000, 1, 1000),
                      _layer("c", 10, 300, 3000), _layer("d", 10, 200, 2000)], four)
    chips = {name: [c.chip for c in lp.cores] for name, lp in m.layers.items()}
    # a's 2 cores (1000 neurons each) fill 2000 of chip 0's 2500 neurons, b's 1000 do not
    # fit beside them; c's 3000 synapses fit beside b's 1000; d's 2000 more do not
    assert chips == {"a": [0, 0], "b": [1], "c": [1], "d": [2]}
    with pytest.raises(SnnccError, match="needs 2 chips"):
        map_to_cores([_layer("a", 2000, 1, 2000), _layer("b", 1000, 1, 1000)],
                      four.model_copy(update={"limits": small.model_copy(update={"chips": 1})}))


def test_shared_weights_store_a_conv_kernel_once_per_core() -> None:
    """loihi2 (shared weights): a 3x3 conv of 64 -> 64 channels on 8x8 positions keeps
    one kernel row (576 weights) per output channel on a core; loihi1 stores each of
    the 576 synapses of every neuron."""
    syn = Synapses("conv", ("x",), "conv", 576, 576 * 4096, 576 * 64, weight_rows=64,
                   row_stride=64)
    layer = ChipLayer("lif", "m.lif", "neuron", (64, 8, 8), (syn,))
    m2 = map_to_cores([layer], load_target("loihi2"))
    # 4096 neurons on one core: 64 rows x 576 x 2 bytes = 73728 B of its 196608 B
    assert m2.layers["lif"].limited_by == "neurons" and len(m2.layers["lif"].cores) == 1
    assert m2.layers["lif"].synapses == 64 * 576
    m1 = map_to_cores([layer], load_target("loihi1"))
    assert m1.layers["lif"].limited_by == "synaptic memory"
    assert m1.layers["lif"].per_core_limit == 131072 // (576 * 2)


def test_paper_target_cannot_be_mapped_or_priced() -> None:
    t = load_target("paper-45nm")
    with pytest.raises(SnnccError) as e:
        map_to_cores([SRC, DST], t)
    assert e.value.code == "SNN-MAP006"
    m = map_to_cores([SRC, DST], load_target("loihi2"))
    with pytest.raises(SnnccError) as e2:
        estimate(_counts(), [SRC, DST], m, t)
    assert e2.value.code == "SNN-COST001" and "no per-event hardware costs" in str(e2.value)


def test_mapping_json_round_trip() -> None:
    m = map_to_cores([SRC, _layer("wide", 1000, 400, 400000)], load_target("loihi1"))
    text = json.dumps(m.to_json())
    assert Mapping.from_json(text) == m
    assert Mapping.from_json(json.loads(text)) == m


# ----- costs -----------------------------------------------------------------------------


def test_sops_are_source_spikes_times_fan_out() -> None:
    r = estimate(_counts(), [SRC, DST], map_to_cores([SRC, DST], load_target("loihi2")),
                 load_target("loihi2"))
    out = r.per_layer[1]
    assert out.sops == sum(IN_SPIKES) * N_OUT == 2000
    assert out.spikes_per_step == [0.0, 5.0] and r.per_layer[0].spikes_per_step == [10.0, 30.0]
    assert r.totals.messages == sum(IN_SPIKES)  # one destination core
    assert r.per_core[0].utilisation == 100 / 8192


def test_loihi2_latency_and_energy_worked_by_hand() -> None:
    """Both layers on tile 0 of loihi2 (SANA-FE's calibrated Loihi numbers).

    Step 1: 30 of 100 source neurons spike; the 50 dense neurons receive
    30*50 = 1500 synaptic events, all 50 update actively, 5 spike.
      core 0 neuron time: 30*9.7 + 70*6.0 + 30*30 = 291 + 420 + 900 = 1611 ns
      core 0 message time: 30 msgs * 5.1 = 153 ns
      core 1 neuron time: 1500*3.8 + 50*9.7 + 5*30 = 5700 + 485 + 150 = 6335 ns
      core 1 message time: 30 msgs in * 16 = 480 ns
      step = 6335 + barrier(1 tile) 600 = 6935 ns
    Step 0: core 1: 500*3.8 + 485 = 2385 ns -> 2985 ns. Total 9920 ns.
    Energy step 1: core 0: 30*72.8 + 70*51.2 + 30*69.3 + 30*111 = 2184 + 3584 + 2079 + 3330
    = 11177 pJ; core 1: 1500*35.5 + 50*72.8 + 5*69.3 = 53250 + 3640 + 346.5 = 57236.5 pJ.
    """
    t = load_target("loihi2")
    r = estimate(_counts(), [SRC, DST], map_to_cores([SRC, DST], t), t)
    s1 = r.per_step[1]
    assert s1.latency_ns == pytest.approx(6935.0)
    assert (s1.bottleneck_core, s1.bottleneck_layer, s1.bound) == (1, "out_lif", "neuron")
    assert (s1.neuron_ns, s1.message_ns) == (pytest.approx(6335.0), pytest.approx(480.0))
    assert r.per_step[0].latency_ns == pytest.approx(2985.0)
    assert r.totals.latency_ns == pytest.approx(9920.0)
    assert s1.energy_pj == pytest.approx(11177.0 + 57236.5)
    assert r.per_layer[1].energy_by_category["synaptic"] == pytest.approx((500 + 1500) * 35.5)


def _hop_mapping() -> Mapping:
    """out_lif split over core 1 (tile 0 at (0,0)) and core 37 (tile 9 at (1,1))."""
    src = LayerPlacement("in_lif", "enc.lif", N_IN, 1024, "neurons",
                         [CorePlacement(0, 0, N_IN, 0, 0, 0)])
    dst = LayerPlacement("out_lif", "fc.lif", N_OUT, 1024, "neurons",
                         [CorePlacement(1, 0, 20, 0, 0, 0), CorePlacement(37, 20, 50, 9, 1, 1)])
    return Mapping("loihi-calibrated", 1024, {"in_lif": src, "out_lif": dst})


def test_latency_and_energy_formula_with_hops_and_barrier_interpolation() -> None:
    t = load_target("loihi-calibrated")
    c, b = t.costs, t.costs.barrier_sync if t.costs else None
    assert c is not None and b is not None
    r = estimate(_counts(), [SRC, DST], _hop_mapping(), t)
    # barrier: 2 tiles used, linear between (1, 600 ns) and (29, 1800 ns)
    barrier = 600.0 + (2 - 1) / (29 - 1) * (1800.0 - 600.0)
    assert r.per_step[0].barrier_ns == pytest.approx(barrier) == b.time_ns(2)
    total_ns = total_pj = 0.0
    for step, (k, o) in enumerate(zip(IN_SPIKES, OUT_SPIKES)):
        # core 0: k spikes, each one message to 2 cores, 1 x-hop + 1 y-hop to core 37
        n0 = k * c.neuron_update_active.time_ns + (N_IN - k) * c.neuron_update_inactive.time_ns \
            + k * c.spike_out.time_ns
        m0 = 2 * k * c.message_out.time_ns + k * (c.hop_east_west.time_ns
                                                  + c.hop_north_south.time_ns)
        e0 = k * c.neuron_update_active.energy_pj + (N_IN - k) * c.neuron_update_inactive.energy_pj \
            + k * c.spike_out.energy_pj + 2 * k * c.message_out.energy_pj \
            + k * (c.hop_east_west.energy_pj + c.hop_north_south.energy_pj)
        # cores 1 (neurons 0..19, all o <= 5 spikes) and 37 (neurons 20..49, no spikes)
        busy, e_dst = [], 0.0
        for n, spikes in ((20, o), (30, 0)):
            sops = k * n
            busy.append(max(sops * c.synaptic_op_dense.time_ns + n * c.neuron_update_active.time_ns
                            + spikes * c.spike_out.time_ns, k * c.message_in.time_ns))
            e_dst += sops * c.synaptic_op_dense.energy_pj + n * c.neuron_update_active.energy_pj \
                + spikes * c.spike_out.energy_pj + k * c.message_in.energy_pj
        step_ns = max(n0, m0, *busy) + barrier
        step_pj = e0 + e_dst + b.energy_pj(2)
        assert r.per_step[step].latency_ns == pytest.approx(step_ns)
        assert r.per_step[step].energy_pj == pytest.approx(step_pj)
        total_ns, total_pj = total_ns + step_ns, total_pj + step_pj
    assert r.totals.latency_ns == pytest.approx(total_ns)
    assert r.totals.energy_pj == pytest.approx(total_pj)
    assert r.totals.hops == 2 * sum(IN_SPIKES) and r.totals.messages == 2 * sum(IN_SPIKES)
    assert [pc.messages_in for pc in r.per_core] == [0.0, 40.0, 40.0]
    assert sum(pl.energy_pj for pl in r.per_layer) + r.totals.barrier_energy_pj == \
        pytest.approx(total_pj)


def test_mapping_of_another_model_is_refused() -> None:
    t = load_target("loihi2")
    other = map_to_cores([SRC, _layer("out_lif", 60, 1, 60)], t)
    with pytest.raises(SnnccError) as e:
        estimate(_counts(), [SRC, DST], other, t)
    assert e.value.code == "SNN-COST002" and "50 neurons" in str(e.value)


def test_batch_is_divided_out() -> None:
    t = load_target("loihi2")
    m = map_to_cores([SRC, DST], t)
    one, two = estimate(_counts(1), [SRC, DST], m, t), estimate(_counts(2), [SRC, DST], m, t)
    assert one.totals.energy_pj == pytest.approx(two.totals.energy_pj)
    assert one.totals.latency_ns == pytest.approx(two.totals.latency_ns)


def test_paper_estimate_is_4_6_macs_plus_0_9_sops() -> None:
    t = load_target("paper-45nm")
    assert t.paper is not None
    p = paper_energy(_counts(), t.paper)
    sops, macs, head = sum(IN_SPIKES) * N_OUT, 7000, 500
    assert (p.e_mac_pj, p.e_ac_pj) == (4.6, 0.9)
    assert p.energy_pj == pytest.approx(4.6 * macs + 0.9 * sops)
    assert p.energy_with_readout_pj == pytest.approx(4.6 * (macs + head) + 0.9 * sops)


def test_report_json_is_plain_json() -> None:
    t = load_target("loihi2")
    r = estimate(_counts(), [SRC, DST], map_to_cores([SRC, DST], t), t)
    d = json.loads(json.dumps(r.to_json()))
    assert set(d) == {"target", "per_step", "per_core", "per_layer", "totals", "paper"}
    assert d["paper"]["e_mac_pj"] == 4.6  # loihi2 has no paper section: 45 nm defaults
    assert d["per_layer"][1]["energy_by_category"].keys() == {"synaptic", "neuron", "spike",
                                                               "message"}
