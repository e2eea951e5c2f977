"""Reading and checking a search trajectory (search/driver.py writes `trajectory.json`).

A trajectory is the best arch of every search iteration, starting with the initial arch;
trajectory knowledge transfer (paper, Appendix A.2) follows it from the initial network's
trained weights to the discovered arch. Every problem is a ValueError naming the file, the
point and what is allowed (a strict_json.RecordError for the file), raised before any
training starts.
"""

from netadapt_tf.common import strict_json as sj
from netadapt_tf.search.driver import TRAJECTORY_FORMAT
from netadapt_tf.space.arch import Arch, validate_arch
from netadapt_tf.space.spec import NetworkSpec


def arch_differences(found: Arch, expected: Arch, limit: int = 3) -> str:
    """The first layers where two archs of one spec differ, e.g.
    'block3/pointwise width 8 vs 16, stem kernel_size 1 vs 3 (and 2 more)'."""
    diffs = []
    for a, b in zip(found.choices, expected.choices, strict=True):
        for field in ("width", "kernel_size"):
            if getattr(a, field) != getattr(b, field):
                diffs.append(f"{a.name} {field} {getattr(a, field)} vs {getattr(b, field)}")
    more = f" (and {len(diffs) - limit} more)" if len(diffs) > limit else ""
    return ", ".join(diffs[:limit]) + more


def _parse_point(point, field: str, spec: NetworkSpec) -> Arch:
    sj.obj(point, field, ("iteration", "target", "accuracy", "resource", "arch"))
    sj.optional(sj.integer, point["iteration"], f"{field}.iteration", minimum=0)
    for key in ("target", "accuracy"):
        sj.optional(sj.number, point[key], f"{field}.{key}")
    sj.number(point["resource"], f"{field}.resource")
    arch = Arch.from_json(point["arch"], f"{field}.arch")
    try:
        validate_arch(spec, arch)
    except ValueError as e:
        raise sj.RecordError(f"{field}.arch: {e}") from None
    return arch


def read_trajectory(path: str, spec: NetworkSpec) -> tuple[Arch, ...]:
    """The archs of the trajectory file `path`, each checked against `spec`."""

    def parse(data) -> tuple[Arch, ...]:
        sj.obj(data, "trajectory", ("format", "unit", "points"))
        sj.constant(data["format"], "trajectory.format", TRAJECTORY_FORMAT)
        sj.optional(sj.string, data["unit"], "trajectory.unit")
        points = sj.array(data["points"], "trajectory.points", min_length=1)
        return tuple(
            _parse_point(point, f"trajectory.points[{i}]", spec) for i, point in enumerate(points)
        )

    return sj.read(path, parse)


def check_trajectory(
    spec: NetworkSpec, archs, initial: Arch, final: Arch | None = None, where: str = "trajectory"
) -> None:
    """The trajectory must belong to `spec`, start at `initial` and (if given) end at
    `final`, the arch to train."""
    if not archs:
        raise ValueError(f"{where}: no points; a trajectory starts at the initial network")
    for i, arch in enumerate(archs):
        try:
            validate_arch(spec, arch)
        except ValueError as e:
            raise ValueError(f"{where}.points[{i}].arch: {e}") from None
    if archs[0] != initial:
        raise ValueError(
            f"{where}.points[0].arch: the trajectory does not start at the initial network "
            f"(differs in {arch_differences(archs[0], initial)}, trajectory vs initial); "
            "allowed: a trajectory whose first point is the initial network whose trained "
            "weights start the transfer"
        )
    if final is not None and archs[-1] != final:
        raise ValueError(
            f"{where}.points[{len(archs) - 1}].arch: the trajectory does not end at the arch "
            f"to train (differs in {arch_differences(archs[-1], final)}, trajectory vs arch); "
            "allowed: the discovered arch of the same search, or no arch (the trajectory's end)"
        )
