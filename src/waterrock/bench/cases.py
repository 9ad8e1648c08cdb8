"""The dam break every solver in a comparison runs: waterrock's methods and the peers alike.

A cube of water of about N particles at rest in the corner of a closed tank twice its width and
1.5 times its height (the shape of SPlisHSPlasH's DamBreakModel scene), particle radius r,
spacing 2r, support radius 4r, cubic spline kernel. The same numbers (positions of the
particles, tank, time step, tolerance, Tait stiffness) are handed to each peer as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from waterrock.solver.solver import lattice_in_box

# Substep lengths: issue 3's reference (SPlisHSPlasH WCSPH at 2e-4 s, DFSPH at 1e-3 s with 0.05 %).
TIME_STEP = {"pbf": 2e-3, "dfsph": 1e-3, "wcsph": 2e-4}
DENSITY_TOLERANCE = 0.0005  # mean relative density error, DFSPH (SPlisHSPlasH's maxError 0.05 %)
# mean relative density change per substep, DFSPH's divergence solve: waterrock's scene default
# (SPlisHSPlasH's maxErrorV in percent; its own default is 0.1 %, ten times looser)
DIVERGENCE_TOLERANCE = 1e-4
REST_DENSITY = 1000.0
STIFFNESS = 50000.0  # Tait's B, Pa (Becker & Teschner 2007, eq. 7); waterrock's and SPlisHSPlasH's default
EXPONENT = 7.0
VISCOSITY = 0.01


@dataclass(frozen=True)
class DamBreak:
    n: int
    method: str
    radius: float = 0.01
    seconds: float = 0.05
    time_step: float = field(default=None)  # type: ignore[assignment]
    tolerance: float = DENSITY_TOLERANCE
    divergence_tolerance: float = DIVERGENCE_TOLERANCE
    stiffness: float = STIFFNESS
    exponent: float = EXPONENT
    rest_density: float = REST_DENSITY
    viscosity: float = VISCOSITY

    def __post_init__(self):
        if self.method not in TIME_STEP:
            raise ValueError(f"unknown method {self.method!r}: choose one of {', '.join(TIME_STEP)}")
        if self.n < 8:
            raise ValueError(f"a dam break needs at least 8 particles, got {self.n}")
        if self.time_step is None:
            object.__setattr__(self, "time_step", TIME_STEP[self.method])

    @property
    def spacing(self) -> float:
        return 2.0 * self.radius

    @property
    def side(self) -> float:
        """Edge of the water cube: a whole number of spacings, about n^(1/3) of them."""
        return max(2, round(self.n ** (1 / 3))) * self.spacing

    @property
    def lower(self) -> tuple[float, float, float]:
        return (0.0, 0.0, 0.0)

    @property
    def upper(self) -> tuple[float, float, float]:
        s = self.side
        return (2.0 * s, 1.5 * s, s)

    @property
    def block(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        s = self.side
        return (0.0, 0.0, 0.0), (s, s, s)

    @property
    def steps(self) -> int:
        return max(1, round(self.seconds / self.time_step))

    def positions(self):
        """The particles at rest: the lattice waterrock fills the block with, half a spacing in."""
        lo, hi = self.block
        return lattice_in_box(lo, hi, self.spacing)

    def scene(self, max_particles: int | None = None, solver: dict | None = None):
        """The case as a waterrock scene; ``solver`` overrides solver settings (iterations...)."""
        from waterrock.scene import parse_scene

        n = len(self.positions())
        lo, hi = self.block
        return parse_scene({
            "name": f"bench_dam_break_{self.method}_{n}",
            "domain": {"lower": list(self.lower), "upper": list(self.upper)},
            "fluid": {"particle_radius": self.radius, "rest_density": self.rest_density,
                      "viscosity": self.viscosity, "max_particles": max_particles or n,
                      "blocks": [{"lower": list(lo), "upper": list(hi)}]},
            "solver": {"method": self.method, "time_step": self.time_step, "max_substeps": 100000,
                       **self._method_settings(), **(solver or {})},
        })

    def _method_settings(self) -> dict:
        """The case's settings that its method has (a scene refuses another method's keys)."""
        return {"pbf": {},
                "dfsph": {"density_tolerance": self.tolerance, "divergence_tolerance": self.divergence_tolerance},
                "wcsph": {"stiffness": self.stiffness, "exponent": self.exponent}}[self.method]

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(lower=list(self.lower), upper=list(self.upper), block=[list(b) for b in self.block],
                 steps=self.steps, particles=len(self.positions()))
        return d
