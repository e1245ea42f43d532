"""Staffing now (metrics.kpi.staffing) against numbers computed here another way: Erlang C
from the factorial formula in exact fractions, Erlang A from its birth–death chain with
the states written out and each waiting call walked through its own little chain, and
the limits that tie the models together (infinite patience is Erlang C, zero patience
Erlang B)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from metrics.kpi import staffing
from metrics.kpi.staffing import (
    agents_needed_erlang_a,
    agents_needed_erlang_c,
    erlang_a_measures,
    erlang_b,
    erlang_c,
    erlang_c_measures,
    mean_patience_s,
)

# -- independent references --------------------------------------------------------------


def exact_erlang_b(n: int, a: Fraction) -> Fraction:
    """A^N/N! ÷ Σ_{k≤N} A^k/k!, in exact fractions."""
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    return terms[n] / sum(terms)


def exact_erlang_c(n: int, a: Fraction) -> Fraction:
    """The textbook P(wait): A^N/N!·N/(N−A) ÷ (Σ_{k<N} A^k/k! + A^N/N!·N/(N−A))."""
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def log_space_erlang_c(n: int, a: float) -> float:
    """The same textbook formula with lgamma and a log-sum-exp, for N in the thousands."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n)]
    log_top = n * math.log(a) - math.lgamma(n + 1) + math.log(n / (n - a))
    peak = max(*logs, log_top)
    below = math.fsum(math.exp(v - peak) for v in logs)
    top = math.exp(log_top - peak)
    return top / (below + top)


def naive_erlang_a(n: int, rate: float, aht: float, patience: float, t: float, max_queue: int = 80):
    """(P_wait, P_abandon, SL) of M/M/n+M, every number from first principles.

    States 0 .. n+max_queue with plain float products; an arriving call sees the
    stationary state (Poisson arrivals). A call finding n + j present stands at place
    j + 1 of the queue: at place m it moves up when an agent frees (rate n·μ) or a call
    ahead hangs up ((m − 1)·θ), and hangs up itself at rate θ. Its chance of hanging up
    is 1 − the product of its chances of moving up at each place; its chance of being
    answered by t comes from uniformising that chain (a Poisson number of steps).
    """
    mu, theta = 1 / aht, 1 / patience
    weights = [1.0]
    for k in range(1, n + max_queue + 1):
        weights.append(weights[-1] * rate / (min(k, n) * mu + max(k - n, 0) * theta))
    total = sum(weights)
    p = [w / total for w in weights]
    p_wait = sum(p[n:])

    places = max_queue + 1
    p_abandon = 0.0
    for j in range(places):
        moves_up = 1.0
        for m in range(1, j + 2):
            moves_up *= (n * mu + (m - 1) * theta) / (n * mu + m * theta)
        p_abandon += p[n + j] * (1 - moves_up)

    fastest = n * mu + places * theta
    place = [p[n + m - 1] for m in range(1, places + 1)]  # place[m - 1]: mass at place m
    answered = 0.0  # mass answered after that many uniformised steps
    answered_by_t = 0.0
    poisson = math.exp(-fastest * t)
    steps = int(fastest * t + 40 * math.sqrt(fastest * t) + 50)
    for k in range(steps):
        answered_by_t += poisson * answered
        moved = [0.0] * places
        for i, mass in enumerate(place):
            m = i + 1
            up = (n * mu + (m - 1) * theta) / fastest
            moved[i] += mass * (1 - up - theta / fastest)
            if m == 1:
                answered += mass * up
            else:
                moved[i - 1] += mass * up
        place = moved
        poisson *= fastest * t / (k + 1)
    service_level = sum(p[:n]) + answered_by_t
    return p_wait, p_abandon, service_level


# -- Erlang C: the published worked example ----------------------------------------------

# 100 calls in 30 minutes, AHT 180 s, 80 % within 20 s: the worked example of Call Centre
# Helper's "Erlang C formula – made simple" (also the case in pyworkforce's tests).
# Traffic = 100 / 1800 s × 180 s = 10 Erlangs.
CALLS, INTERVAL_S, AHT_S, TARGET_S = 100, 1800, 180, 20
RATE = CALLS / INTERVAL_S
A = Fraction(CALLS, INTERVAL_S) * AHT_S


def test_the_example_is_ten_erlangs():
    assert A == 10
    assert erlang_c_measures(11, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S).erlangs == pytest.approx(10.0)


@pytest.mark.parametrize("n", range(11, 17))
def test_erlang_c_matches_the_factorial_formula(n: int):
    p_wait = exact_erlang_c(n, A)
    service_level = 1 - float(p_wait) * math.exp(-(n - 10) * TARGET_S / AHT_S)
    asa_s = float(p_wait) * AHT_S / (n - 10)
    got = erlang_c_measures(n, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S)
    assert got.p_wait == pytest.approx(float(p_wait), rel=1e-9, abs=1e-12)
    assert got.service_level == pytest.approx(service_level, rel=1e-9, abs=1e-12)
    assert got.asa_s == pytest.approx(asa_s, rel=1e-9, abs=1e-12)
    assert got.occupancy == pytest.approx(10 / n, rel=1e-12)
    assert erlang_c(n, 10.0) == pytest.approx(float(p_wait), rel=1e-9, abs=1e-12)


def test_the_published_example_figures():
    # Worked out with exact fractions (exact_erlang_c) and rounded by hand. pyworkforce's
    # tests assert the same case, at 14 agents: P(wait) 0.174, SL 0.888, occupancy 0.714.
    eleven = erlang_c_measures(11, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S)
    thirteen = erlang_c_measures(13, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S)
    fourteen = erlang_c_measures(14, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S)
    assert eleven.p_wait == pytest.approx(0.6821, abs=5e-5)
    assert eleven.service_level == pytest.approx(0.3896, abs=5e-5)  # not 0.3929
    assert thirteen.service_level == pytest.approx(0.7956, abs=5e-5)  # just short of 80 %
    assert fourteen.p_wait == pytest.approx(0.1741, abs=5e-5)
    assert fourteen.service_level == pytest.approx(0.8884, abs=5e-5)
    assert fourteen.asa_s == pytest.approx(7.836, abs=5e-4)


def test_the_example_needs_fourteen_agents_not_eight():
    got = agents_needed_erlang_c(CALLS, interval_s=INTERVAL_S, aht_s=AHT_S, target_s=TARGET_S, sl_target=0.8)
    assert got is not None
    assert got.agents == 14
    assert got.service_level == pytest.approx(1 - float(exact_erlang_c(14, A)) * math.exp(-4 * 20 / 180), rel=1e-9)


def test_a_target_on_the_service_level_itself_is_met():
    # "At least the target": 14 agents give exactly this SL, so a target a hair above it
    # needs 15 and one a hair below it 14.
    sl_14 = 1 - float(exact_erlang_c(14, A)) * math.exp(-4 * TARGET_S / AHT_S)
    for target, agents in ((sl_14 - 1e-12, 14), (sl_14 + 1e-12, 15)):
        got = agents_needed_erlang_c(CALLS, interval_s=INTERVAL_S, aht_s=AHT_S, target_s=TARGET_S, sl_target=target)
        assert got is not None and got.agents == agents


@pytest.mark.parametrize(("calls", "interval_s", "aht_s"), [(100, 3600, 180), (100, 1800, 90)])
def test_eight_agents_is_the_answer_for_five_erlangs(calls: int, interval_s: int, aht_s: int):
    # 100 calls an hour at 180 s, or 100 in 30 minutes at 90 s: 5 Erlangs. By hand:
    # 7 agents give 74.0 % (at 180 s) and 79.2 % (at 90 s), 8 give 88.0 % and 91.4 %.
    a = Fraction(calls, interval_s) * aht_s
    assert a == 5
    for n, meets in ((7, False), (8, True)):
        sl = 1 - float(exact_erlang_c(n, a)) * math.exp(-(n - 5) * 20 / aht_s)
        assert (sl >= 0.8) is meets
    got = agents_needed_erlang_c(calls, interval_s=interval_s, aht_s=aht_s, target_s=20, sl_target=0.8)
    assert got is not None and got.agents == 8


@pytest.mark.parametrize("n", [0, 1, 5, 10, 25])
def test_erlang_b_matches_the_factorial_formula(n: int):
    assert erlang_b(n, 7.5) == pytest.approx(float(exact_erlang_b(n, Fraction(15, 2))), rel=1e-12)


def test_erlang_c_is_one_when_agents_do_not_exceed_the_traffic():
    assert erlang_c(10, 10.0) == 1.0
    got = erlang_c_measures(9, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S)
    assert (got.p_wait, got.service_level, got.asa_s) == (1.0, 0.0, math.inf)


# -- large N -------------------------------------------------------------------------------


def test_two_thousand_erlangs_without_overflow():
    rate = 2000 / 180  # calls per second at AHT 180 s: 2000 Erlangs
    got = agents_needed_erlang_c(rate, interval_s=1, aht_s=180, target_s=20, sl_target=0.8)
    assert got is not None
    n = got.agents
    # A square-root staffing margin: a little above A, nowhere near 2A.
    assert 2000 < n < 2000 + 2 * math.sqrt(2000)
    for agents in (n - 1, n):
        independent = log_space_erlang_c(agents, 2000.0)
        assert erlang_c(agents, 2000.0) == pytest.approx(independent, rel=1e-9)
    sl = [1 - log_space_erlang_c(k, 2000.0) * math.exp(-(k - 2000) * 20 / 180) for k in (n - 1, n)]
    assert sl[0] < 0.8 <= sl[1]


def test_erlang_b_far_past_factorial_range():
    b = erlang_b(100_000, 99_000.0)
    assert 0 < b < 1
    assert math.isfinite(erlang_c(100_000, 99_000.0))


# -- Erlang A ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "rate", "aht", "patience", "t"),
    [
        (3, 1 / 60, 180, 120, 20),  # 3 Erlangs on 3 agents: stable only through abandons
        (2, 1 / 60, 180, 300, 20),  # overloaded: 3 Erlangs on 2 agents
        (2, 1 / 60, 180, 300, 60),
        (5, 1 / 60, 180, 60, 15),  # comfortable staffing, impatient callers
    ],
)
def test_erlang_a_matches_the_chain_written_out(n: int, rate: float, aht: float, patience: float, t: float):
    p_wait, p_abandon, service_level = naive_erlang_a(n, rate, aht, patience, t)
    got = erlang_a_measures(n, rate_per_s=rate, aht_s=aht, patience_s=patience, target_s=t)
    assert got.p_wait == pytest.approx(p_wait, abs=1e-9)
    assert got.p_abandon == pytest.approx(p_abandon, abs=1e-9)
    assert got.service_level == pytest.approx(service_level, abs=1e-9)
    assert got.occupancy == pytest.approx(rate * aht * (1 - p_abandon) / n, abs=1e-9)


def test_erlang_a_tends_to_erlang_c_as_patience_grows():
    c = erlang_c_measures(11, rate_per_s=RATE, aht_s=AHT_S, target_s=TARGET_S)
    gaps = []
    for patience in (1e6, 1e8, 1e12):
        a = erlang_a_measures(11, rate_per_s=RATE, aht_s=AHT_S, patience_s=patience, target_s=TARGET_S)
        gaps.append(max(abs(a.p_wait - c.p_wait), abs(a.service_level - c.service_level), a.p_abandon))
    # The gap closes in proportion to 1/patience, and is below 1e-9 by 1e12 s.
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[0] / gaps[1] == pytest.approx(100, rel=0.05)
    assert gaps[2] < 1e-9
    inf = erlang_a_measures(11, rate_per_s=RATE, aht_s=AHT_S, patience_s=math.inf, target_s=TARGET_S)
    assert (inf.p_wait, inf.p_abandon, inf.service_level) == (c.p_wait, 0.0, c.service_level)


def test_erlang_a_with_no_patience_is_erlang_b():
    b = float(exact_erlang_b(4, Fraction(3)))
    for patience in (0.0, 1e-9):
        got = erlang_a_measures(4, rate_per_s=1 / 60, aht_s=180, patience_s=patience, target_s=20)
        assert got.p_wait == pytest.approx(b, abs=1e-7)
        assert got.p_abandon == pytest.approx(b, abs=1e-7)
        assert got.service_level == pytest.approx(1 - b, abs=1e-7)


@pytest.mark.parametrize("sl_target", [0.05, 0.3, 0.6, 0.8, 0.95])
def test_erlang_a_staffing_is_the_fewest_agents_meeting_the_target(sl_target: float):
    # 60 calls an hour at 180 s (3 Erlangs), patience 120 s, 20 s threshold: walk the
    # written-out chain up from one agent to the first that meets the target.
    n = 1
    while naive_erlang_a(n, 1 / 60, 180, 120, 20)[2] < sl_target:
        n += 1
    got = agents_needed_erlang_a(60, interval_s=3600, aht_s=180, patience_s=120, target_s=20, sl_target=sl_target)
    assert got is not None
    assert got.agents == n
    assert got.service_level == pytest.approx(naive_erlang_a(n, 1 / 60, 180, 120, 20)[2], abs=1e-9)


def test_erlang_a_with_long_patience_staffs_like_erlang_c():
    got = agents_needed_erlang_a(
        CALLS, interval_s=INTERVAL_S, aht_s=AHT_S, patience_s=1e9, target_s=TARGET_S, sl_target=0.8
    )
    assert got is not None and got.agents == 14


def test_erlang_a_service_level_never_beats_the_answering_capacity():
    # N agents answer at most N/AHT calls a second: SL ≤ N/A whatever the patience.
    for n in (1500, 1760, 1900):
        got = erlang_a_measures(n, rate_per_s=2000 / 180, aht_s=180, patience_s=120, target_s=20)
        assert got.service_level <= n / 2000
        assert got.p_abandon >= 1 - n / 2000 - 1e-9  # the calls past capacity hang up


def test_erlang_a_at_two_thousand_erlangs():
    got = agents_needed_erlang_a(2000 / 180, interval_s=1, aht_s=180, patience_s=120, target_s=20, sl_target=0.8)
    assert got is not None
    n = got.agents
    assert 1600 <= n <= 2012  # at least 80 % of A (SL ≤ N/A), no more than Erlang C's
    before = erlang_a_measures(n - 1, rate_per_s=2000 / 180, aht_s=180, patience_s=120, target_s=20)
    assert before.service_level < 0.8 <= got.service_level


def test_erlang_a_with_long_patience_at_two_thousand_erlangs():
    # An overload with callers who almost never hang up: the queue's weights run to
    # tens of millions of lengths, the search passes through it, and lands on Erlang C.
    rate = 2000 / 180
    erlang_c_staff = agents_needed_erlang_c(rate, interval_s=1, aht_s=180, target_s=20, sl_target=0.8)
    got = agents_needed_erlang_a(rate, interval_s=1, aht_s=180, patience_s=1e9, target_s=20, sl_target=0.8)
    assert erlang_c_staff is not None and got is not None
    assert got.agents == erlang_c_staff.agents
    overloaded = erlang_a_measures(1800, rate_per_s=rate, aht_s=180, patience_s=1e9, target_s=20)
    assert overloaded.p_wait == pytest.approx(1.0)
    assert overloaded.p_abandon == pytest.approx(0.1, abs=1e-9)  # the 200 Erlangs past capacity


# -- patience --------------------------------------------------------------------------


def test_mean_patience_from_a_hand_made_day():
    answered_waits = [5.0, 12.0, 30.0, 0.0, 8.0]  # 55 s, each a patience known to be longer
    abandoned_waits = [45.0, 20.0, 60.0]  # 125 s, each a patience seen
    total = sum(answered_waits) + sum(abandoned_waits)
    assert mean_patience_s(total, len(abandoned_waits)) == 60.0  # 180 s ÷ 3

    # It maximises the exponential likelihood with the answered calls censored:
    # log L(θ) = (abandons)·log θ − θ·(all waiting time).
    def log_likelihood(mean: float) -> float:
        return sum(math.log(1 / mean) - w / mean for w in abandoned_waits) - sum(w / mean for w in answered_waits)

    best = log_likelihood(60.0)
    assert best > log_likelihood(59.0) and best > log_likelihood(61.0)


def test_no_abandons_means_unbounded_patience():
    assert mean_patience_s(300.0, 0) == math.inf
    assert mean_patience_s(0.0, 0) == math.inf


# -- edge cases ------------------------------------------------------------------------


def test_no_calls_need_no_agents():
    c = agents_needed_erlang_c(0, interval_s=1800, aht_s=180, target_s=20, sl_target=0.8)
    a = agents_needed_erlang_a(0, interval_s=1800, aht_s=180, patience_s=60, target_s=20, sl_target=0.8)
    assert c is not None and c.agents == 0
    assert a is not None and a.agents == 0


def test_calls_that_take_no_time_need_one_agent():
    c = agents_needed_erlang_c(100, interval_s=1800, aht_s=0, target_s=20, sl_target=0.8)
    a = agents_needed_erlang_a(100, interval_s=1800, aht_s=0, patience_s=60, target_s=20, sl_target=0.8)
    assert c is not None and (c.agents, c.p_wait, c.service_level) == (1, 0.0, 1.0)
    assert a is not None and (a.agents, a.p_wait, a.service_level) == (1, 0.0, 1.0)


def test_no_agents_answer_nothing():
    got = erlang_a_measures(0, rate_per_s=RATE, aht_s=AHT_S, patience_s=60, target_s=20)
    assert (got.p_wait, got.p_abandon, got.service_level) == (1.0, 1.0, 0.0)


def test_a_zero_threshold_counts_only_calls_answered_at_once():
    got = erlang_c_measures(12, rate_per_s=RATE, aht_s=AHT_S, target_s=0)
    assert got.service_level == pytest.approx(1 - float(exact_erlang_c(12, A)), rel=1e-12)


def test_beyond_the_cap_there_is_no_answer():
    assert agents_needed_erlang_c(100, interval_s=1800, aht_s=180, target_s=20, sl_target=0.8, max_agents=13) is None
    assert agents_needed_erlang_c(100, interval_s=1800, aht_s=180, target_s=20, sl_target=0.8, max_agents=10) is None
    got = agents_needed_erlang_c(100, interval_s=1800, aht_s=180, target_s=20, sl_target=0.8, max_agents=14)
    assert got is not None and got.agents == 14
    assert (
        agents_needed_erlang_a(100, interval_s=1800, aht_s=180, patience_s=60, target_s=20, sl_target=0.8, max_agents=8)
        is None
    )
    assert staffing.MAX_AGENTS >= 10_000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"calls": -1}, "calls"),
        ({"interval_s": 0}, "interval_s"),
        ({"aht_s": -180}, "aht_s"),
        ({"aht_s": math.nan}, "aht_s"),
        ({"target_s": -20}, "target_s"),
        ({"sl_target": 0}, "sl_target"),
        ({"sl_target": 1}, "sl_target"),
        ({"sl_target": 80}, "0.8 for 80 %"),
        ({"sl_target": -0.1}, "sl_target"),
        ({"max_agents": -1}, "max_agents"),
    ],
)
def test_invalid_inputs_say_which(change: dict[str, float], message: str):
    args: dict[str, float] = {
        "calls": 100,
        "interval_s": 1800,
        "aht_s": 180,
        "target_s": 20,
        "sl_target": 0.8,
        "max_agents": 1000,
    }
    args.update(change)
    calls = args.pop("calls")
    max_agents = int(args.pop("max_agents"))
    with pytest.raises(ValueError, match=message):
        agents_needed_erlang_c(calls, max_agents=max_agents, **args)
    with pytest.raises(ValueError, match=message):
        agents_needed_erlang_a(calls, patience_s=60, max_agents=max_agents, **args)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: erlang_b(-1, 5.0), "agents"),
        (lambda: erlang_c(3, -5.0), "erlangs"),
        (lambda: erlang_a_measures(3, rate_per_s=0.1, aht_s=180, patience_s=-1, target_s=20), "patience_s"),
        (lambda: erlang_a_measures(3, rate_per_s=0.1, aht_s=180, patience_s=math.nan, target_s=20), "patience_s"),
        (lambda: mean_patience_s(-5.0, 2), "total_wait_s"),
        (lambda: mean_patience_s(50.0, -2), "abandons"),
    ],
)
def test_invalid_model_inputs_say_which(call, message: str):
    with pytest.raises(ValueError, match=message):
        call()


# -- staffing now: one period's calls in, agents needed out ---------------------------------

# The published example as one period's counts: 100 calls in 30 min, AHT 180 s,
# 80 % within 20 s: 10 Erlangs, 14 agents (checked above by fractions).
EXAMPLE = {
    "offered": 100,
    "short_abandoned": 0,
    "abandoned": 0,
    "aht_s": 180.0,
    "wait_s": 0.0,
    "period_s": 1800.0,
    "target_s": 20.0,
    "sl_target": 0.8,
    "min_calls": 10,
}


def test_staffing_need_without_abandons_is_erlang_c_of_the_published_example() -> None:
    need = staffing.staffing_need(**EXAMPLE)
    assert (need.agents, need.model, need.why) == (14, staffing.ERLANG_C_MODEL, None)
    assert (need.calls, need.aht_s, need.patience_s) == (100, 180.0, None)
    # SL at 14 agents from the factorial formula: 1 − C·e^{−(14 − 10)·20/180}.
    c = float(exact_erlang_c(14, Fraction(10)))
    assert need.service_level == pytest.approx(1 - c * math.exp(-4 * 20 / 180), rel=1e-12)


def test_staffing_need_takes_short_abandons_out_of_the_calls() -> None:
    # 130 offered of which 30 short abandons: the model sees 100 calls, 14 agents; with all
    # 130 (13 Erlangs) it would need more.
    need = staffing.staffing_need(**{**EXAMPLE, "offered": 130, "short_abandoned": 30})
    assert (need.calls, need.agents) == (100, 14)
    assert agents_needed_erlang_c(130, interval_s=1800, aht_s=180, target_s=20, sl_target=0.8).agents > 14


def test_staffing_need_with_abandons_is_erlang_a_at_the_estimated_patience() -> None:
    # 8 abandons over 1600 s of waiting: a mean patience of 200 s.
    need = staffing.staffing_need(**{**EXAMPLE, "abandoned": 8, "wait_s": 1600.0})
    expected = agents_needed_erlang_a(100, interval_s=1800, aht_s=180, patience_s=200, target_s=20, sl_target=0.8)
    assert expected is not None
    assert (need.model, need.patience_s, need.agents) == (staffing.ERLANG_A, 200.0, expected.agents)
    assert need.service_level == expected.service_level
    # Impatient callers free the queue: Erlang A needs no more than Erlang C here.
    assert need.agents is not None and need.agents <= 14


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"offered": 9}, "fewer than 10 calls"),
        ({"aht_s": None}, "no handled calls"),
        ({"sl_target": 1.0}, "a 100 % target is never met"),
        ({"max_agents": 13}, "more than 13 agents"),
    ],
)
def test_staffing_need_says_why_it_has_no_number(change: dict, why: str) -> None:
    need = staffing.staffing_need(**{**EXAMPLE, **change})
    assert (need.agents, need.why) == (None, why)
    assert need.short_by(3) is None


def test_staffing_need_of_no_calls_is_no_agents() -> None:
    need = staffing.staffing_need(**{**EXAMPLE, "offered": 0, "aht_s": None, "min_calls": 0})
    assert (need.agents, need.why) == (0, None)
    assert staffing.staffing_need(**{**EXAMPLE, "sl_target": 0.0}).agents == 0


@pytest.mark.parametrize(("staffed", "short"), [(0, 14), (9, 5), (14, 0), (20, 0)])
def test_short_by_is_needed_minus_staffed_never_below_zero(staffed: int, short: int) -> None:
    assert staffing.staffing_need(**EXAMPLE).short_by(staffed) == short
