"""What :func:`~revsnn.conversion.convert` reports: one :class:`NodeRecord` per node found and the
:class:`ConversionReport` of the whole network (shared by the layer-major and time-major
converters)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["NodeRecord", "ConversionReport"]


@dataclass
class NodeRecord:
    """What happened to one spiking node.

    path: its module path; source: its type as written; action: ``"converted"`` or
    ``"left alone"``; target: the node put in its place; fused_bn: the BatchNorm fused into it
    (its path) or ``""``; reason: why it was left alone, or why its BN was not fused; changes:
    the hyperparameters that did not carry over as they were.
    """

    path: str
    source: str
    action: str
    target: str = ""
    fused_bn: str = ""
    reason: str = ""
    changes: tuple = ()


@dataclass
class ConversionReport:
    """Every node :func:`convert` found and what it did with it, and notes on the whole network.

    ``str(report)`` reads as a list; :meth:`rows` gives one dict per node (for tables).
    """

    strategy: str
    nodes: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    traced: bool = False
    patterns: list = field(default_factory=list)
    """``(where, reason)`` of every pattern that is not a node and was refused (time-major)."""

    @property
    def converted(self) -> list:
        return [r for r in self.nodes if r.action == "converted"]

    @property
    def fused(self) -> list:
        return [r for r in self.nodes if r.fused_bn]

    @property
    def left_alone(self) -> list:
        return [r for r in self.nodes if r.action != "converted"]

    @property
    def complete(self) -> bool:
        """Every node converted (and at least one found), no pattern refused."""
        return bool(self.nodes) and not self.left_alone and not self.patterns

    def rows(self) -> list:
        return [dict(path=r.path, source=r.source, action=r.action, target=r.target,
                     fused_bn=r.fused_bn, reason=r.reason, changes="; ".join(r.changes))
                for r in self.nodes]

    def summary(self) -> str:
        # a time-major unit keeps its BatchNorm as a layer, made per-timestep (not fused)
        bn = "made per-timestep" if self.strategy == "temporal" else "fused"
        return (f"{self.strategy}: {len(self.converted)} of {len(self.nodes)} nodes converted, "
                f"{len(self.fused)} BatchNorms {bn}, {len(self.left_alone)} left alone"
                + (f", {len(self.patterns)} pattern{'s' * (len(self.patterns) > 1)} refused"
                   if self.patterns else ""))

    def __str__(self) -> str:
        lines = [self.summary()]
        for r in self.nodes:
            if r.action == "converted":
                fused = f" + BN {r.fused_bn} fused" if r.fused_bn and "unit" not in r.target \
                    else ""
                lines.append(f"  {r.path}: {r.source} -> {r.target}{fused}")
                if r.reason:
                    lines.append(f"      BN not fused: {r.reason}")
            else:
                lines.append(f"  {r.path}: {r.source} LEFT ALONE: {r.reason}")
            lines += [f"      changed: {c}" for c in r.changes]
        lines += [f"  {where}: LEFT ALONE: {why}" for where, why in self.patterns]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
