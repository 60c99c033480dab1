"""A hardware target as data: number formats, resource limits and per-op costs.

Why data and not code: the mapper, the cycle-approximate simulator and the
energy report all need the same numbers, and those numbers come from papers and
calibrations that disagree with each other (Davies et al. 2018 pre-silicon
figures vs SANA-FE's calibrated ones). Keeping each target in a YAML file with
its citation, and forbidding unknown fields, makes every figure traceable and a
typo an error instead of a silently ignored default.

Units: energy in picojoules (pJ), time in nanoseconds (ns), memory in bytes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    """Base for every target model: unknown fields are errors, values are frozen."""

    # a cost of inf or NaN would turn every figure into nan (and --json into invalid JSON)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Cost(_Strict):
    """Energy and time of one occurrence of an operation."""

    energy_pj: float = Field(ge=0)
    time_ns: float = Field(ge=0)


class SyncPoint(_Strict):
    """One measured point of the barrier-synchronisation cost curve."""

    tiles: int = Field(ge=1)
    time_ns: float = Field(ge=0)
    energy_pj: float = Field(default=0.0, ge=0)


class BarrierSync(_Strict):
    """Cost of the end-of-time-step barrier as a function of the tiles in use.

    Papers report only a range ("113-465 ns for 1-32 tiles"), so the curve is a
    small table interpolated linearly and held constant outside its ends.
    """

    points: list[SyncPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _sorted_unique(self) -> BarrierSync:
        tiles = [p.tiles for p in self.points]
        if tiles != sorted(set(tiles)):
            raise ValueError("barrier_sync.points must have strictly increasing 'tiles'")
        return self

    def _interp(self, tiles: int, attr: str) -> float:
        pts = self.points
        if tiles <= pts[0].tiles:
            return float(getattr(pts[0], attr))
        if tiles >= pts[-1].tiles:
            return float(getattr(pts[-1], attr))
        for lo, hi in zip(pts, pts[1:]):
            if lo.tiles <= tiles <= hi.tiles:
                frac = (tiles - lo.tiles) / (hi.tiles - lo.tiles)
                a, b = float(getattr(lo, attr)), float(getattr(hi, attr))
                return a + frac * (b - a)
        raise AssertionError("unreachable: points are sorted")  # pragma: no cover

    def time_ns(self, tiles: int) -> float:
        """Barrier time for a step that uses ``tiles`` tiles."""
        return self._interp(tiles, "time_ns")

    def energy_pj(self, tiles: int) -> float:
        """Barrier energy for a step that uses ``tiles`` tiles (0 where unknown)."""
        return self._interp(tiles, "energy_pj")


class NumberFormats(_Strict):
    """Bit widths of the numbers a core stores and computes with.

    Defaults are Loihi's as modelled by Lava 0.10.0's ``fixed_pt`` processes:
    24-bit u and v, a 17-bit threshold MSB-aligned by 6 bits, 12-bit decays.
    ``weight_bits`` counts magnitude bits (Lava's ``num_weight_bits``); the
    sign is one more bit, so 8 means the range [-256, 255] for mixed signs.
    ``max_message_bits`` is 0 for binary-spike-only chips, else the widest
    graded spike payload.
    """

    weight_bits: int = Field(ge=1, le=32)
    weight_exp_min: int
    weight_exp_max: int
    u_bits: int = Field(default=24, ge=1)
    v_bits: int = Field(default=24, ge=1)
    threshold_bits: int = Field(default=17, ge=1)
    threshold_shift: int = Field(default=6, ge=0)
    activation_shift: int = Field(default=6, ge=0)
    decay_bits: int = Field(default=12, ge=1)
    bias_mant_bits: int = Field(default=13, ge=1)
    bias_exp_bits: int = Field(default=3, ge=0)
    spike_bits: int = Field(default=1, ge=1)
    max_message_bits: int = Field(ge=0)

    @model_validator(mode="after")
    def _exp_range(self) -> NumberFormats:
        if self.weight_exp_min > self.weight_exp_max:
            raise ValueError("weight_exp_min must be <= weight_exp_max")
        return self


class ResourceLimits(_Strict):
    """What one chip offers; the mapper must fit a network inside these."""

    cores: int = Field(ge=1)
    usable_cores: int | None = Field(default=None, ge=1)
    neurons_per_core: int = Field(ge=1)
    fan_in_per_core: int = Field(ge=1)
    fan_out_per_core: int = Field(ge=1)
    synaptic_memory_bytes_per_core: int = Field(ge=1)
    cores_per_tile: int = Field(ge=1)
    mesh_tiles_x: int = Field(ge=1)
    mesh_tiles_y: int = Field(ge=1)
    max_neurons_per_chip: int | None = Field(default=None, ge=1)
    max_synapses_per_chip: int | None = Field(default=None, ge=1)
    # A system of several such chips (an 8-chip Loihi 2 board): the mapper places layers
    # over them and the cost model prices each chip-crossing message with costs.chip_link.
    chips: int = Field(default=1, ge=1)
    # The core stores a weight shared by several synapses (a conv kernel over positions,
    # a linear over tokens) once; False: every synapse holds its own weight (Loihi 1).
    shared_weights: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ResourceLimits:
        tiles = self.mesh_tiles_x * self.mesh_tiles_y
        if tiles * self.cores_per_tile < self.cores:
            raise ValueError(
                f"mesh {self.mesh_tiles_x}x{self.mesh_tiles_y} tiles x {self.cores_per_tile} "
                f"cores/tile holds fewer than cores={self.cores}"
            )
        if self.usable_cores is not None and self.usable_cores > self.cores:
            raise ValueError("usable_cores must be <= cores")
        return self

    @property
    def tiles(self) -> int:
        return self.mesh_tiles_x * self.mesh_tiles_y

    @property
    def cores_available(self) -> int:
        """Cores the mapper may use (usable_cores where the toolchain reserves some)."""
        return self.usable_cores if self.usable_cores is not None else self.cores


class OpCosts(_Strict):
    """Per-event costs.

    Neuron cost per time step: every mapped neuron pays ``neuron_update_inactive``
    when it received no input and did not spike, else ``neuron_update_active``;
    a spiking neuron also pays ``spike_out``. Each message leaving a core pays
    ``message_out``, each arriving one ``message_in``, each mesh hop one of the
    hop costs, and each step one barrier.
    """

    synaptic_op_dense: Cost
    synaptic_op_sparse: Cost
    synaptic_op_conv: Cost
    neuron_update_active: Cost
    neuron_update_inactive: Cost
    spike_out: Cost
    message_out: Cost
    message_in: Cost
    hop_east_west: Cost
    hop_north_south: Cost
    barrier_sync: BarrierSync
    chip_link: Cost | None = None  # per message between chips (needed when limits.chips > 1)


class PaperEstimate(_Strict):
    """The SNN papers' energy model: E = E_MAC * MACs + E_AC * SOPs."""

    e_mac_pj: float = Field(gt=0)
    e_ac_pj: float = Field(gt=0)
    process_node: str | None = None


class Target(_Strict):
    """A compilation target. A hardware target has formats, limits and costs;
    a paper-estimate target has only ``paper``; a target may have both."""

    name: str = Field(min_length=1)
    description: str
    sources: list[str] = Field(min_length=1)
    assumptions: dict[str, str] = Field(default_factory=dict)
    formats: NumberFormats | None = None
    limits: ResourceLimits | None = None
    costs: OpCosts | None = None
    paper: PaperEstimate | None = None

    @model_validator(mode="after")
    def _complete(self) -> Target:
        hw = [self.formats is not None, self.limits is not None, self.costs is not None]
        if any(hw) and not all(hw):
            raise ValueError("a hardware target needs all of formats, limits and costs")
        if self.limits is not None and self.limits.chips > 1 and self.costs is not None \
                and self.costs.chip_link is None:
            raise ValueError("a target of several chips needs costs.chip_link (per message "
                             "between chips)")
        if not any(hw) and self.paper is None:
            raise ValueError("a target needs hardware sections (formats, limits, costs) or 'paper'")
        for path in self.assumptions:
            if not _has_path(self, path):
                raise ValueError(f"assumptions names '{path}', which is not a field of this target")
        return self

    @property
    def is_hardware(self) -> bool:
        return self.costs is not None

    def is_assumed(self, path: str) -> bool:
        """True if the value at dotted ``path`` (or a parent of it) is an assumption."""
        return any(path == p or path.startswith(p + ".") for p in self.assumptions)


def _has_path(obj: Any, path: str) -> bool:
    """Whether a dotted path (e.g. ``costs.spike_out.energy_pj``) names a set field."""
    for part in path.split("."):
        if isinstance(obj, BaseModel) and part in type(obj).model_fields:
            obj = getattr(obj, part)
        else:
            return False
    return obj is not None
