"""Staffing now: how many agents a queue needs, this interval, to meet its service-level
target at the current arrival rate and handle time.

Two models of one queue with N agents, Poisson arrivals and exponential handle times:

- Erlang C (M/M/N): every caller waits as long as it takes. It needs N > A, the traffic
  in Erlangs, or the queue grows without end.
- Erlang A (M/M/N+M): a waiting caller hangs up after an exponentially distributed
  patience. The queue is stable at any N. Use it where abandons are known;
  ``mean_patience_s`` estimates the patience from them.

Service level is the project's default formula (``sl_formula = "negative"``,
docs/kpis.md): calls answered within the threshold ÷ calls offered, so a call that hangs
up counts against it. The models know no short abandons: give them the offered calls
without those, as the KPI does.

Units: seconds for every time, calls for counts, calls per second for a rate, Erlangs
(calls per second × seconds per call) for traffic. Pure: numbers in, numbers out, the
standard library only.

A search gives up (returns None) past ``max_agents`` agents, ``MAX_AGENTS`` unless
told otherwise. Invalid inputs (negative, not finite, a target share outside (0, 1))
raise ValueError naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

MAX_AGENTS = 100_000
"""Default cap of the searches: far above any single queue, and still a fraction of a
second of arithmetic. Past it a search returns None rather than run on."""

# An integral's tail is dropped once it is below this share of the rest: under rounding.
_NEGLIGIBLE = 1e-18
# Its rise is skipped while the integrand is below e^−_DROP of its peak.
_DROP = 60.0


@dataclass(frozen=True, slots=True)
class ErlangC:
    """Erlang C at one staffing level; shares are of offered calls."""

    agents: int
    erlangs: float
    p_wait: float
    """Share of calls that find every agent busy and queue."""
    service_level: float
    """Share answered within the threshold (every call is answered in the end)."""
    asa_s: float
    """Mean wait of all calls (all are answered); infinite when N ≤ A."""
    occupancy: float
    """Share of agent time spent handling calls."""


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Erlang A at one staffing level; shares are of offered calls."""

    agents: int
    erlangs: float
    p_wait: float
    """Share of calls that find every agent busy and queue."""
    p_abandon: float
    """Share that hang up before an agent answers."""
    service_level: float
    """Share answered within the threshold: answered_in_sl ÷ offered."""
    occupancy: float
    """Share of agent time spent handling calls (abandoned calls take none)."""


# -- checks ----------------------------------------------------------------------------


def _number(name: str, value: float, *, infinite: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not infinite) or value < 0:
        allowed = "≥ 0 (inf allowed)" if infinite else "a finite number ≥ 0"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
    return value


def _share(name: str, value: float) -> float:
    # 1 is refused rather than searched for: with random arrivals some call always
    # waits past any threshold, so the search would stop wherever rounding says 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{name} must be a share above 0 and below 1 (0.8 for 80 %), got {value!r}")
    return float(value)


def _rate(calls: float, interval_s: float) -> float:
    calls = _number("calls", calls)
    interval_s = _number("interval_s", interval_s)
    if interval_s == 0:
        raise ValueError("interval_s must be above 0, got 0")
    return calls / interval_s


# -- Erlang B and C --------------------------------------------------------------------


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability of N agents offered A Erlangs with no queue (M/M/N/N)."""
    _count("agents", agents)
    erlangs = _number("erlangs", erlangs)
    # The textbook A^N/N! ÷ Σ A^k/k! overflows from N ≈ 170; this recursion stays in
    # (0, 1] at every step, so N in the hundred thousands is fine.
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def _c_from_b(agents: int, erlangs: float, b: float) -> float:
    # The queue's P(wait) from the loss system's blocking, for N > A: no powers needed.
    return agents * b / (agents - erlangs * (1.0 - b))


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a call waits with N agents and A Erlangs (M/M/N); 1 when N ≤ A,
    where the queue never empties."""
    _count("agents", agents)
    erlangs = _number("erlangs", erlangs)
    if agents <= erlangs:
        return 1.0
    return _c_from_b(agents, erlangs, erlang_b(agents, erlangs))


def _erlang_c_result(agents: int, erlangs: float, p_wait: float, aht_s: float, target_s: float) -> ErlangC:
    if agents <= erlangs:
        return ErlangC(agents, erlangs, 1.0, 0.0, math.inf, 1.0 if agents else 0.0)
    if p_wait == 0.0:
        # Only when A = 0 (no calls, or calls that take no time): nobody waits, and
        # dividing by a zero AHT below is avoided.
        return ErlangC(agents, erlangs, 0.0, 1.0, 0.0, erlangs / agents)
    spare = agents - erlangs
    # The wait of a queued call is exponential with rate (N − A)/AHT.
    service_level = 1.0 - p_wait * math.exp(-spare * target_s / aht_s)
    asa_s = p_wait * aht_s / spare
    return ErlangC(agents, erlangs, p_wait, service_level, asa_s, erlangs / agents)


def erlang_c_measures(agents: int, *, rate_per_s: float, aht_s: float, target_s: float) -> ErlangC:
    """Erlang C with N agents, calls arriving at ``rate_per_s`` per second, handled in
    ``aht_s`` seconds on average, against a threshold of ``target_s`` seconds.

    SL = 1 − P_wait·exp(−(N − A)·T/AHT) for N > A, and 0 when N ≤ A.
    """
    _count("agents", agents)
    rate = _number("rate_per_s", rate_per_s)
    aht_s = _number("aht_s", aht_s)
    target_s = _number("target_s", target_s)
    erlangs = rate * aht_s
    return _erlang_c_result(agents, erlangs, erlang_c(agents, erlangs), aht_s, target_s)


def agents_needed_erlang_c(
    calls: float,
    *,
    interval_s: float,
    aht_s: float,
    target_s: float,
    sl_target: float,
    max_agents: int = MAX_AGENTS,
) -> ErlangC | None:
    """The fewest agents whose Erlang C service level is at least ``sl_target``, and
    that level; None when more than ``max_agents`` would be needed.

    ``calls`` offered in ``interval_s`` seconds (a forecast may be fractional; pass
    ``interval_s=1`` to give a rate per second). No calls need no agents. Calls with
    a zero handle time still need one agent to answer them.
    """
    rate = _rate(calls, interval_s)
    aht_s = _number("aht_s", aht_s)
    target_s = _number("target_s", target_s)
    sl_target = _share("sl_target", sl_target)
    _count("max_agents", max_agents)
    if rate == 0:
        return ErlangC(0, 0.0, 0.0, 1.0, 0.0, 0.0)
    erlangs = rate * aht_s
    agents = math.floor(erlangs) + 1  # the first stable staffing
    if agents > max_agents:
        return None
    b = erlang_b(agents, erlangs)
    while True:
        result = _erlang_c_result(agents, erlangs, _c_from_b(agents, erlangs, b), aht_s, target_s)
        if result.service_level >= sl_target:
            return result
        agents += 1
        if agents > max_agents:
            return None
        # One more step of the Erlang B recursion: the search costs O(N) in all.
        b = erlangs * b / (agents + erlangs * b)


# -- Erlang A --------------------------------------------------------------------------


def _gauss_legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nodes and weights of the n-point Gauss–Legendre rule on [−1, 1] (Newton on P_n)."""
    nodes: list[float] = []
    weights: list[float] = []
    for i in range(1, n + 1):
        x = math.cos(math.pi * (i - 0.25) / (n + 0.5))
        for _ in range(100):
            p_prev, p = 1.0, x
            for k in range(2, n + 1):
                p_prev, p = p, ((2 * k - 1) * x * p - (k - 1) * p_prev) / k
            step = p / (n * (x * p - p_prev) / (x * x - 1.0))
            x -= step
            if abs(step) < 1e-16:
                break
        p_prev, p = 1.0, x
        for k in range(2, n + 1):
            p_prev, p = p, ((2 * k - 1) * x * p - (k - 1) * p_prev) / k
        slope = n * (x * p - p_prev) / (x * x - 1.0)
        nodes.append(x)
        weights.append(2.0 / ((1.0 - x * x) * slope * slope))
    return tuple(nodes), tuple(weights)


_GL_NODES, _GL_WEIGHTS = _gauss_legendre(10)


def _log_integral(
    g: Callable[[float], float],
    slope: Callable[[float], float],
    curvature: Callable[[float], float],
    mode: float,
    end: float,
    max_step: Callable[[float], float],
) -> float:
    """log ∫_0^end e^{g(x)} dx for a concave g (``slope`` and ``curvature`` its first two
    derivatives, peaking at ``mode``); ``end`` may be infinite if g falls for good.
    ``max_step(x)`` caps a panel starting at x where g has a part its first two
    derivatives do not show.

    Logs, because e^g can pass the largest float at its peak while the answer, once
    scaled, is a probability. Panels are sized to g's own scale (it changes by about 2
    across one), so a 10-point Gauss–Legendre rule is exact to rounding on each and a
    narrow peak cannot slip between the nodes unseen, as it can in blind adaptive
    quadrature. The cost is tens to a few hundred panels, whatever the load or patience.
    """
    if end == 0:
        return -math.inf
    top = min(max(mode, 0.0), end)
    peak = g(top)
    start = 0.0
    if g(0.0) < peak - _DROP:
        # Skip the rise where e^g is below e^−60 of its peak: by concavity all of it
        # before ``start`` is at most e^{g(start)}/g'(start), a share ≤ e^−60 of the rest.
        low, high = 0.0, top
        for _ in range(80):
            mid = (low + high) / 2
            low, high = (mid, high) if g(mid) < peak - _DROP else (low, mid)
        start = low
    parts: list[float] = []
    x = start
    while x < end:
        scale = min(2.0 / max(abs(slope(x)), 1e-300), 2.0 / math.sqrt(max(-curvature(x), 1e-300)))
        h = min(scale, max_step(x), end - x)
        half, mid = h / 2, x + h / 2
        parts.append(
            half
            * math.fsum(w * math.exp(g(mid + half * t) - peak) for t, w in zip(_GL_NODES, _GL_WEIGHTS, strict=True))
        )
        x += h
        # Falling, g lies under its tangent, so the rest is at most e^{g(x)}/|g'(x)|.
        if slope(x) < 0 and math.exp(g(x) - peak) / -slope(x) < _NEGLIGIBLE * math.fsum(parts):
            break
    return peak + math.log(math.fsum(parts))


def erlang_a_measures(agents: int, *, rate_per_s: float, aht_s: float, patience_s: float, target_s: float) -> ErlangA:
    """Erlang A (M/M/N+M) with N agents, calls at ``rate_per_s`` per second, handled in
    ``aht_s`` seconds on average, hanging up after ``patience_s`` seconds of waiting on
    average (exponentially distributed; ``math.inf`` is Erlang C, 0 is Erlang B: no one
    waits), against a threshold of ``target_s`` seconds.

    The steady state is the birth–death chain on the calls present: λ up, and down
    min(k, N)·μ plus θ for each waiting call. Up to N it is the loss system's, whose
    states sum to π_N / B (B = Erlang B). Past N the weights π_{N+j}/π_N =
    Π_{i≤j} λ/(Nμ + iθ) sum, exactly, to Nμ·∫_0^∞ exp(g(x)) dx with
    g(x) = λ(1 − e^{−θx})/θ − Nμx (expand e^{λu/θ} in u = 1 − e^{−θx}: each term is a
    Beta integral, the j-th weight). One integral of a concave exponent replaces a sum
    that, with long patience and an overload, runs to millions of terms.

    A call is answered within T when its offered wait V (what it would wait if it never
    hung up) is at most T and its patience outlasts V. With FCFS and exponential
    patience V has, past 0, the density Nμ·π_N·exp(g(x)) (Baccelli and Hébuterne;
    Mandelbaum and Zeltyn's Erlang-A note), so

        SL = (1 − P_wait) + Nμ·π_N·∫_0^T exp(g(x) − θx) dx.
    """
    _count("agents", agents)
    rate = _number("rate_per_s", rate_per_s)
    aht_s = _number("aht_s", aht_s)
    patience_s = _number("patience_s", patience_s, infinite=True)
    target_s = _number("target_s", target_s)
    erlangs = rate * aht_s
    if math.isinf(patience_s):
        c = _erlang_c_result(agents, erlangs, erlang_c(agents, erlangs), aht_s, target_s)
        return ErlangA(agents, erlangs, c.p_wait, 0.0, c.service_level, c.occupancy)
    if agents == 0:
        # No one answers: every call queues, and with a finite patience hangs up.
        return ErlangA(0, erlangs, 1.0, 1.0, 0.0, 0.0)
    if erlangs == 0:
        # No calls, or calls that take no time: an agent is always free.
        return ErlangA(agents, 0.0, 0.0, 0.0, 1.0, 0.0)
    b = erlang_b(agents, erlangs)
    if patience_s == 0:
        # A call that finds every agent busy hangs up at once: the loss system.
        return ErlangA(agents, erlangs, b, b, 1.0 - b, erlangs * (1.0 - b) / agents)
    if b == 0.0:
        # All agents busy is rarer than the smallest float: nobody waits.
        return ErlangA(agents, erlangs, 0.0, 0.0, 1.0, erlangs / agents)

    served = agents / aht_s  # N·μ, answers per second with every agent busy
    theta = 1.0 / patience_s
    grow = rate / theta

    def g(x: float) -> float:
        # expm1 keeps 1 − e^{−θx} exact when θx is tiny (long patience).
        return grow * -math.expm1(-theta * x) - served * x

    def g_slope(x: float) -> float:
        return rate * math.exp(-theta * x) - served

    def curvature(x: float) -> float:
        return -rate * theta * math.exp(-theta * x)

    def max_step(x: float) -> float:
        # Panels no wider than the patience while λ·e^{−θx}/θ still moves g; once it
        # is below rounding g is a straight line and the panels may be as long as it.
        return 1.0 / theta if grow * math.exp(-theta * x) > 1e-16 else math.inf

    mode = math.log(rate / served) / theta if rate > served else 0.0
    log_queue = math.log(served) + _log_integral(g, g_slope, curvature, mode, math.inf, max_step)
    # 1/π_N = (π_0 + … + π_N)/π_N + Σ_{j≥1} π_{N+j}/π_N = (1/B − 1) + Σ_{j≥0} ….
    log_inv_p_n = _log_add(math.log1p(-b) - math.log(b), log_queue)
    p_wait = math.exp(log_queue - log_inv_p_n)
    # π_N·(Σ_{j≥0} − 1), with log Σ ≥ 0; expm1 keeps it exact when the queue is rare.
    queue_nonempty = p_wait * -math.expm1(-log_queue)
    # Flow balance: calls that queue are answered at N·μ while anyone waits, and the
    # rest hang up; so λ·P_abandon = λ·P_wait − Nμ·P(queue non-empty).
    p_abandon = min(1.0, max(0.0, p_wait - agents / erlangs * queue_nonempty))

    def sl_slope(x: float) -> float:
        return g_slope(x) - theta

    sl_mode = math.log(rate / (served + theta)) / theta if rate > served + theta else 0.0
    log_within = _log_integral(lambda x: g(x) - theta * x, sl_slope, curvature, sl_mode, target_s, max_step)
    answered_after_wait = math.exp(math.log(served) - log_inv_p_n + log_within)
    service_level = min(1.0, max(0.0, 1.0 - p_wait + answered_after_wait))
    occupancy = min(1.0, erlangs * (1.0 - p_abandon) / agents)
    return ErlangA(agents, erlangs, p_wait, p_abandon, service_level, occupancy)


def _log_add(a: float, b: float) -> float:
    """log(e^a + e^b) without overflow."""
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


def agents_needed_erlang_a(
    calls: float,
    *,
    interval_s: float,
    aht_s: float,
    patience_s: float,
    target_s: float,
    sl_target: float,
    max_agents: int = MAX_AGENTS,
) -> ErlangA | None:
    """The fewest agents whose Erlang A service level (answered within ``target_s`` ÷
    offered) is at least ``sl_target``, and the measures there; None when more than
    ``max_agents`` would be needed. Arguments as for ``agents_needed_erlang_c``, plus
    the mean patience (``mean_patience_s``).
    """
    rate = _rate(calls, interval_s)
    aht_s = _number("aht_s", aht_s)
    patience_s = _number("patience_s", patience_s, infinite=True)
    target_s = _number("target_s", target_s)
    sl_target = _share("sl_target", sl_target)
    _count("max_agents", max_agents)
    if rate == 0:
        return ErlangA(0, 0.0, 0.0, 0.0, 1.0, 0.0)
    erlangs = rate * aht_s

    def at(agents: int) -> ErlangA:
        return erlang_a_measures(agents, rate_per_s=rate, aht_s=aht_s, patience_s=patience_s, target_s=target_s)

    # N agents answer at most N/AHT calls a second, so SL ≤ N/A: no fewer than
    # ⌈target·A⌉ can do. SL rises with N (more agents shorten every offered wait), so
    # gallop up from there until the target is met, then halve the last gap.
    low = max(1, math.ceil(sl_target * erlangs))  # every N below it falls short
    if low > max_agents:
        return None
    step = max(1, math.isqrt(math.ceil(erlangs)))
    high = low
    best = at(high)
    while best.service_level < sl_target:
        if high == max_agents:
            return None
        low = high + 1
        high = min(max_agents, high + step)
        step *= 2
        best = at(high)
    while low < high:
        mid = (low + high) // 2
        candidate = at(mid)
        if candidate.service_level >= sl_target:
            high, best = mid, candidate
        else:
            low = mid + 1
    return best


# -- patience --------------------------------------------------------------------------


def mean_patience_s(total_wait_s: float, abandons: int) -> float:
    """Mean patience in seconds: the waiting time of every call that waited, answered
    and abandoned alike, ÷ the number of abandons.

    This is the maximum-likelihood estimate for exponential patience: an abandon is
    a patience seen; an answered call only shows its patience outlasted its wait (a
    censored observation), which adds its wait to the exposure but no abandon. With no
    abandons the estimate is infinite: Erlang A then is Erlang C. Short abandons are
    the caller's choice: count them in both or in neither.
    """
    total_wait_s = _number("total_wait_s", total_wait_s)
    abandons = _count("abandons", abandons)
    if abandons == 0:
        return math.inf
    return total_wait_s / abandons


# -- staffing now ------------------------------------------------------------------------

ERLANG_A, ERLANG_C_MODEL = "erlang_a", "erlang_c"


@dataclass(frozen=True, slots=True)
class StaffingNeed:
    """Agents one queue needs to meet its service-level target, from one stretch of calls
    (a rolling window, or an interval of a report); ``agents`` None, with ``why``, when
    the calls cannot say (never a guess)."""

    agents: int | None
    why: str | None
    """Why ``agents`` is None: too few calls, no handle time, a target no staffing meets."""
    model: str | None
    """``erlang_a`` where the stretch had abandons (the patience is known), else ``erlang_c``."""
    calls: int
    """Calls the model sees: offered minus short abandons."""
    period_s: float
    aht_s: float | None
    patience_s: float | None
    """Mean patience (``mean_patience_s``); None without abandons."""
    service_level: float | None
    """The model's service level with ``agents`` agents (answered within T ÷ offered)."""

    def short_by(self, staffed: int) -> int | None:
        """Agents missing when ``staffed`` are logged in (0 when enough); None if unknown."""
        return None if self.agents is None else max(0, self.agents - staffed)


def staffing_need(
    *,
    offered: int,
    short_abandoned: int,
    abandoned: int,
    aht_s: float | None,
    wait_s: float,
    period_s: float,
    target_s: float,
    sl_target: float,
    min_calls: int,
    max_agents: int = MAX_AGENTS,
) -> StaffingNeed:
    """The fewest agents that meet ``sl_target`` within ``target_s`` for the calls of one
    period: ``offered`` calls in ``period_s`` seconds (short abandons are taken out, as the
    service level does), handled in ``aht_s`` seconds on average (None: none was handled).

    ``abandoned`` (short abandons not counted) and ``wait_s`` (the seconds the same calls
    waited, answered, abandoned, exited or still waiting) give the patience; with no
    abandon it is unknown and Erlang C is used. ``min_calls`` gates it as it gates the
    KPIs: fewer offered calls say nothing about the rate.
    """
    for name, value in (("offered", offered), ("short_abandoned", short_abandoned), ("abandoned", abandoned)):
        _count(name, value)
    _count("min_calls", min_calls)
    calls = max(offered - short_abandoned, 0)
    aht_s = None if aht_s is None else _number("aht_s", aht_s)
    patience_s = mean_patience_s(wait_s, abandoned) if abandoned else None

    def need(agents: int | None, why: str | None, model: str | None = None, sl: float | None = None) -> StaffingNeed:
        return StaffingNeed(agents, why, model, calls, period_s, aht_s, patience_s, sl)

    if offered < min_calls:
        return need(None, f"fewer than {min_calls} calls")
    if calls == 0:
        return need(0, None, ERLANG_C_MODEL, 1.0)
    if aht_s is None:
        return need(None, "no handled calls")
    if sl_target <= 0:
        return need(0, None, ERLANG_C_MODEL, 0.0)
    if sl_target >= 1:
        # Random arrivals: some call always waits past any threshold.
        return need(None, "a 100 % target is never met")
    common = {"interval_s": period_s, "aht_s": aht_s, "target_s": target_s, "sl_target": sl_target}
    found: ErlangA | ErlangC | None
    if patience_s is None:
        model = ERLANG_C_MODEL
        found = agents_needed_erlang_c(calls, max_agents=max_agents, **common)
    else:
        model = ERLANG_A
        found = agents_needed_erlang_a(calls, patience_s=patience_s, max_agents=max_agents, **common)
    if found is None:
        return need(None, f"more than {max_agents} agents")
    return need(found.agents, None, model, found.service_level)
