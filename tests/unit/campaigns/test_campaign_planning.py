"""Campaign planning: priority, budget, calendar, assignment and schedule.

Every target here is synthetic (made-up SIRETs, commune codes "99xxx" that do not exist,
a grid of points near Béthune): nothing is real data.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter, defaultdict
from datetime import date
from statistics import mean

import pytest

from services.campaigns.domain.calendar import french_public_holidays, is_working_day
from services.campaigns.domain.planning import (
    Plan,
    PlanningRules,
    Target,
    distance_km,
    make_plan,
    priority,
)

pytestmark = pytest.mark.unit

CLOSING_NAF = "22.11Z"  # tyre manufacturing, as in the reference case
NAFS = ["22.11Z", "22.19Z", "22.29A", "25.62B", "10.71C", "46.69B", "33.12Z", "49.41A"]
BANDS = ["NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", None]
CONSULTANTS = ["c-alpha", "c-bravo", "c-charlie"]


def rules(**overrides: object) -> PlanningRules:
    base = PlanningRules(
        budget_days=150.0,
        cost_per_visit_days=1.0,
        daily_cap=4,
        start=date(2021, 3, 1),
        end=date(2021, 6, 30),
        closing_naf_code=CLOSING_NAF,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def grid_targets(
    rows: int, cols: int, per_commune: int, seed: int = 1, *, step: float = 0.04
) -> list[Target]:
    """``per_commune`` sites in each commune of a rows × cols grid, near (2.6, 50.5)."""
    rng = random.Random(seed)
    out: list[Target] = []
    n = 0
    for r, c in itertools.product(range(rows), range(cols)):
        commune = f"99{r * cols + c:03d}"
        for _ in range(per_commune):
            n += 1
            out.append(
                Target(
                    site_id=f"9{n:013d}",
                    naf_code=rng.choice(NAFS),
                    headcount_band=rng.choice(BANDS),
                    commune_insee=commune,
                    lon=2.6 + c * step + rng.uniform(-0.005, 0.005),
                    lat=50.5 + r * step + rng.uniform(-0.005, 0.005),
                )
            )
    return out


def scattered_targets(n: int, seed: int = 7, communes: int = 41) -> list[Target]:
    """``n`` sites over ``communes`` communes of uneven size (a few towns, many villages)."""
    rng = random.Random(seed)
    centres = [(2.4 + rng.uniform(0, 0.6), 50.35 + rng.uniform(0, 0.35)) for _ in range(communes)]
    weights = [1.0 / (k + 1) for k in range(communes)]
    out: list[Target] = []
    for i in range(n):
        k = rng.choices(range(communes), weights)[0]
        lon, lat = centres[k]
        out.append(
            Target(
                site_id=f"8{i:013d}",
                naf_code=rng.choice(NAFS),
                headcount_band=rng.choice(BANDS),
                commune_insee=f"99{k:03d}",
                lon=lon + rng.uniform(-0.01, 0.01),
                lat=lat + rng.uniform(-0.01, 0.01),
            )
        )
    return out


def rank_order(targets: list[Target]) -> list[str]:
    def key(t: Target) -> tuple[float, str]:
        return (-priority(t, CLOSING_NAF).score, t.site_id)

    return [t.site_id for t in sorted(targets, key=key)]


def loads(plan: Plan) -> list[int]:
    return list(plan.per_consultant.values())


def routes(plan: Plan) -> dict[str, list[str]]:
    """site ids per consultant, in visiting order."""
    out: dict[str, list[str]] = defaultdict(list)
    for v in sorted(plan.visits, key=lambda v: (v.consultant_id, v.day, v.order)):
        out[v.consultant_id].append(v.site_id)
    return out


# --------------------------------------------------------------------------- priority


def site(naf: str = "46.69B", band: str | None = "12", **kw: object) -> Target:
    base = Target(
        site_id="90000000000001",
        naf_code=naf,
        headcount_band=band,
        commune_insee="99001",
        lon=2.6,
        lat=50.5,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_big_same_division_beats_small_other_section() -> None:
    big = priority(site(naf="22.29A", band="41"), CLOSING_NAF)
    small = priority(site(naf="46.69B", band="12"), CLOSING_NAF)
    assert big.score > small.score
    assert any("band 41" in r and "500–999" in r for r in big.reasons)
    assert any("division 22" in r for r in big.reasons)
    assert any("band 12" in r for r in small.reasons)
    assert any("section G" in r for r in small.reasons)


def test_reasons_add_up_to_the_score() -> None:
    p = priority(site(naf="22.19Z", band="21"), CLOSING_NAF)
    assert p.reasons == (
        "size band 21 (50–99 employees): +30.3",
        "same NAF group 22.1 as the closing site: +30",
    )
    assert p.score == pytest.approx(60.3)


def test_naf_closeness_levels_in_order() -> None:
    codes = ["22.11Z", "22.11A", "22.19Z", "22.29A", "25.62B", "46.69B"]
    levels = ["sub-class", "class", "group", "division", "section", "differs"]
    scores = []
    for naf, level in zip(codes, levels, strict=True):
        p = priority(site(naf=naf, band="12"), CLOSING_NAF)
        assert level in p.reasons[1]
        scores.append(p.score)
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)


def test_naf_without_dot_is_understood() -> None:
    assert priority(site(naf="2211Z"), "22.11Z") == priority(site(naf="22.11Z"), "22.11Z")


def test_size_grows_with_the_band_and_unknown_is_lowest() -> None:
    order = ["53", "52", "51", "42", "41", "32", "31", "22", "21", "12", "11", "03", "02", "01"]
    scores = [priority(site(band=b), CLOSING_NAF).score for b in order]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)
    floor = priority(site(band="01"), CLOSING_NAF).score
    for band in ("NN", "00", None, "zz"):
        p = priority(site(band=band), CLOSING_NAF)
        assert p.score < floor
        assert p.reasons[0].startswith("size band")


def test_malformed_naf_scores_nothing_but_says_so() -> None:
    p = priority(site(naf="bogus", band=None), CLOSING_NAF)
    assert p.score == 0
    assert "not recognised" in p.reasons[1]


def test_visited_reason() -> None:
    assert any("already visited" in r for r in priority(site(visited=True), CLOSING_NAF).reasons)


# --------------------------------------------------------------------------- budget


def test_budget_150_days_for_164_sites() -> None:
    targets = scattered_targets(164)
    plan = make_plan(targets, CONSULTANTS, rules())
    assert len(plan.visits) == 150
    assert len(plan.uncovered) == 14
    assert plan.days_planned == 150.0
    for u in plan.uncovered:
        assert u.reason == "budget exhausted: 150.0 of 150.0 consultant-days planned"
    assert {u.site_id for u in plan.uncovered} == set(rank_order(targets)[-14:])
    # Uncovered come highest priority first.
    assert [u.site_id for u in plan.uncovered] == rank_order(targets)[-14:]


def test_cheaper_visits_cover_everything() -> None:
    plan = make_plan(scattered_targets(164), CONSULTANTS, rules(cost_per_visit_days=0.75))
    assert len(plan.visits) == 164
    assert plan.uncovered == ()
    assert plan.days_planned == 123


def test_fractional_cost_keeps_the_last_affordable_visit() -> None:
    # 0.1 × 30 exceeds 3.0 in floats; the 30th visit must still be affordable.
    plan = make_plan(
        scattered_targets(40), CONSULTANTS, rules(budget_days=3.0, cost_per_visit_days=0.1)
    )
    assert len(plan.visits) == 30


def test_days_already_spent_reduce_capacity() -> None:
    targets = scattered_targets(164)
    plan = make_plan(targets, CONSULTANTS, rules(budget_used_days=100.0))
    assert len(plan.visits) == 50
    assert len(plan.uncovered) == 114
    assert {u.reason for u in plan.uncovered} == {
        "budget exhausted: 150.0 of 150.0 consultant-days planned (100.0 already spent)"
    }
    assert [u.site_id for u in plan.uncovered] == rank_order(targets)[50:]


def test_overspent_budget_plans_nothing() -> None:
    plan = make_plan(scattered_targets(20), CONSULTANTS, rules(budget_used_days=151.0))
    assert plan.visits == ()
    assert len(plan.uncovered) == 20
    assert all(u.reason.startswith("budget exhausted") for u in plan.uncovered)


def test_every_unvisited_target_exactly_once_and_visited_nowhere() -> None:
    targets = scattered_targets(200)
    targets = [dataclasses.replace(t, visited=i % 7 == 0) for i, t in enumerate(targets)]
    plan = make_plan(targets, CONSULTANTS, rules(budget_used_days=29.0))
    planned = [v.site_id for v in plan.visits]
    uncovered = [u.site_id for u in plan.uncovered]
    both = planned + uncovered
    assert len(both) == len(set(both))
    assert set(both) == {t.site_id for t in targets if not t.visited}
    assert not set(both) & {t.site_id for t in targets if t.visited}


def test_all_visited_gives_an_empty_plan() -> None:
    targets = [dataclasses.replace(t, visited=True) for t in scattered_targets(10)]
    plan = make_plan(targets, CONSULTANTS, rules())
    assert plan.visits == ()
    assert plan.uncovered == ()
    assert plan.days_planned == 0
    assert dict(plan.per_consultant) == dict.fromkeys(CONSULTANTS, 0)


# --------------------------------------------------------------------------- calendar


def test_daily_cap_working_days_and_end() -> None:
    r = rules(daily_cap=3, start=date(2021, 4, 3), end=date(2021, 5, 31), budget_days=500.0)
    plan = make_plan(scattered_targets(300), CONSULTANTS, r)
    per_day = Counter((v.consultant_id, v.day) for v in plan.visits)
    assert max(per_day.values()) <= 3
    holidays = french_public_holidays(2021)
    for v in plan.visits:
        assert is_working_day(v.day)
        assert v.day.weekday() < 5
        assert v.day not in holidays
        assert r.start <= v.day <= r.end
    # Orders inside a day run 1..n without gaps.
    by_day: dict[tuple[str, date], list[int]] = defaultdict(list)
    for v in plan.visits:
        by_day[(v.consultant_id, v.day)].append(v.order)
    assert all(sorted(o) == list(range(1, len(o) + 1)) for o in by_day.values())


def test_first_day_is_the_next_working_day() -> None:
    # Saturday 22 May 2021, then Whit Monday: the campaign starts on Tuesday 25.
    plan = make_plan(scattered_targets(10), CONSULTANTS, rules(start=date(2021, 5, 22)))
    assert min(v.day for v in plan.visits) == date(2021, 5, 25)


def test_days_are_filled_in_order() -> None:
    plan = make_plan(scattered_targets(60), CONSULTANTS, rules(daily_cap=5))
    for consultant, count in plan.per_consultant.items():
        days = sorted({v.day for v in plan.visits if v.consultant_id == consultant})
        # Full days, only the last one partial.
        assert len(days) == -(-count // 5)


def test_short_period_leaves_no_working_day() -> None:
    # 12 to 14 May 2021: Wednesday, Ascension, Friday → 2 days × 2 visits × 3 consultants.
    targets = scattered_targets(30)
    r = rules(daily_cap=2, start=date(2021, 5, 12), end=date(2021, 5, 14))
    plan = make_plan(targets, CONSULTANTS, r)
    assert len(plan.visits) == 12
    assert len(plan.uncovered) == 18
    assert {u.reason for u in plan.uncovered} == {"no working day left before 2021-05-14"}
    # The calendar keeps the highest priorities.
    assert {v.site_id for v in plan.visits} == set(rank_order(targets)[:12])


def test_period_without_working_day() -> None:
    r = rules(start=date(2021, 5, 22), end=date(2021, 5, 24))  # Sat, Sun, Whit Monday
    plan = make_plan(scattered_targets(5), CONSULTANTS, r)
    assert plan.visits == ()
    assert {u.reason for u in plan.uncovered} == {"no working day left before 2021-05-24"}


def test_budget_reason_wins_over_calendar_for_the_lowest_priorities() -> None:
    targets = scattered_targets(40)
    r = rules(budget_days=20.0, daily_cap=1, start=date(2021, 5, 12), end=date(2021, 5, 14))
    plan = make_plan(targets, CONSULTANTS, r)
    reasons = [u.reason for u in plan.uncovered]
    assert len(plan.visits) == 6
    assert reasons.count("no working day left before 2021-05-14") == 14
    assert sum(x.startswith("budget exhausted: 20.0 of 20.0") for x in reasons) == 20


# --------------------------------------------------------------------------- assignment


def test_load_is_balanced_when_communes_are_single_sites() -> None:
    targets = grid_targets(10, 10, 1)
    for k in range(1, 9):
        roster = [f"c{i}" for i in range(k)]
        plan = make_plan(targets, roster, rules(budget_days=1000.0))
        assert len(plan.visits) == 100
        assert max(loads(plan)) - min(loads(plan)) <= 1


def test_load_is_balanced_within_the_largest_commune() -> None:
    targets = scattered_targets(164)
    largest = max(Counter(t.commune_insee for t in targets).values())
    plan = make_plan(targets, CONSULTANTS, rules())
    assert max(loads(plan)) - min(loads(plan)) <= largest
    # And in practice far tighter than one whole town.
    assert max(loads(plan)) - min(loads(plan)) <= 150 // 3 // 5 * 2


def test_communes_are_kept_whole_when_balance_allows() -> None:
    targets = grid_targets(6, 6, 5)  # 36 communes of 5 sites, 3 consultants
    plan = make_plan(targets, CONSULTANTS, rules(budget_days=1000.0))
    commune = {t.site_id: t.commune_insee for t in targets}
    owners: dict[str, set[str]] = defaultdict(set)
    for v in plan.visits:
        owners[commune[v.site_id]].add(v.consultant_id)
    split = [c for c, who in owners.items() if len(who) > 1]
    assert len(split) <= len(CONSULTANTS) - 1
    assert max(loads(plan)) - min(loads(plan)) <= 5


def test_areas_are_compact() -> None:
    targets = grid_targets(8, 8, 3)
    plan = make_plan(targets, ["c1", "c2", "c3", "c4"], rules(budget_days=1000.0))
    where = {t.site_id: (t.lon, t.lat) for t in targets}
    owner = {v.site_id: v.consultant_id for v in plan.visits}
    intra: list[float] = []
    inter: list[float] = []
    for a, b in itertools.combinations(sorted(owner), 2):
        (alon, alat), (blon, blat) = where[a], where[b]
        assert alon is not None and alat is not None and blon is not None and blat is not None
        d = distance_km(alon, alat, blon, blat)
        (intra if owner[a] == owner[b] else inter).append(d)
    assert mean(intra) < 0.7 * mean(inter)


def test_routes_go_commune_by_commune() -> None:
    targets = scattered_targets(164)
    plan = make_plan(targets, CONSULTANTS, rules())
    commune = {t.site_id: t.commune_insee for t in targets}
    for visits in routes(plan).values():
        runs = [c for c, _ in itertools.groupby(commune[s] for s in visits)]
        assert len(runs) == len(set(runs)), "a commune is visited twice"


def test_route_follows_priority_within_a_commune() -> None:
    targets = grid_targets(3, 3, 6)
    plan = make_plan(targets, CONSULTANTS, rules(budget_days=1000.0))
    commune = {t.site_id: t.commune_insee for t in targets}
    score = {v.site_id: (-v.priority.score, v.site_id) for v in plan.visits}
    for visits in routes(plan).values():
        for _, group in itertools.groupby(visits, key=lambda s: commune[s]):
            ids = list(group)
            assert ids == sorted(ids, key=lambda s: score[s])


def test_route_chains_nearby_communes() -> None:
    # One consultant, one site per commune on a line: the route walks the line.
    targets = [
        Target(f"9{i:013d}", "25.62B", "12", f"99{i:03d}", 2.6 + 0.03 * ((i * 7) % 10), 50.5)
        for i in range(10)
    ]
    plan = make_plan(targets, ["solo"], rules())
    lon = {t.site_id: t.lon or 0.0 for t in targets}
    lons = [lon[s] for s in routes(plan)["solo"]]
    assert lons == sorted(lons) or lons == sorted(lons, reverse=True)


def test_targets_without_coordinates_are_planned() -> None:
    targets = scattered_targets(60)
    targets = [
        dataclasses.replace(t, lon=None, lat=None) if i % 4 == 0 else t
        for i, t in enumerate(targets)
    ]
    targets += [
        Target(f"7{i:013d}", "22.19Z", "12", f"98{i % 3:03d}", None, None) for i in range(9)
    ]
    plan = make_plan(targets, CONSULTANTS, rules())
    assert len(plan.visits) == 69
    assert max(loads(plan)) - min(loads(plan)) <= 1 + max(
        Counter(t.commune_insee for t in targets).values()
    )


def test_pinned_targets_stay_with_their_consultant() -> None:
    targets = scattered_targets(90)
    pins = {t.site_id: CONSULTANTS[i % 3] for i, t in enumerate(targets[:30])}
    targets = [dataclasses.replace(t, pinned_consultant=pins.get(t.site_id)) for t in targets]
    plan = make_plan(targets, CONSULTANTS, rules())
    owner = {v.site_id: v.consultant_id for v in plan.visits}
    assert all(owner[s] == c for s, c in pins.items())
    assert len(plan.visits) == 90
    assert max(loads(plan)) - min(loads(plan)) <= max(
        Counter(t.commune_insee for t in targets).values()
    )


def test_pins_keep_everything_on_a_replan() -> None:
    targets = scattered_targets(120)
    first = make_plan(targets, CONSULTANTS, rules())
    owner = {v.site_id: v.consultant_id for v in first.visits}
    again = [dataclasses.replace(t, pinned_consultant=owner.get(t.site_id)) for t in targets]
    second = make_plan(again, CONSULTANTS, rules())
    assert {v.site_id: v.consultant_id for v in second.visits} == owner
    assert second == first


def test_new_sites_extend_existing_areas_on_a_replan() -> None:
    targets = grid_targets(6, 6, 3)
    first = make_plan(targets, CONSULTANTS, rules(budget_days=1000.0))
    owner = {v.site_id: v.consultant_id for v in first.visits}
    pinned = [dataclasses.replace(t, pinned_consultant=owner[t.site_id]) for t in targets]
    # A new site in each commune: it should go to whoever already works there, mostly.
    new = [
        dataclasses.replace(t, site_id="6" + t.site_id[1:], pinned_consultant=None)
        for t in targets[::3]
    ]
    second = make_plan(pinned + new, CONSULTANTS, rules(budget_days=1000.0))
    commune_owner = {t.commune_insee: owner[t.site_id] for t in targets[::3]}
    got = {v.site_id: v.consultant_id for v in second.visits}
    agree = sum(got[t.site_id] == commune_owner[t.commune_insee] for t in new)
    assert agree >= 0.7 * len(new)


def test_pin_to_someone_off_the_roster_is_ignored() -> None:
    targets = [dataclasses.replace(t, pinned_consultant="gone") for t in scattered_targets(30)]
    plan = make_plan(targets, CONSULTANTS, rules())
    assert len(plan.visits) == 30
    assert set(plan.per_consultant) == set(CONSULTANTS)
    assert max(loads(plan)) - min(loads(plan)) <= 30


def test_pinned_beyond_the_consultants_calendar_are_uncovered() -> None:
    targets = [dataclasses.replace(t, pinned_consultant="c-alpha") for t in scattered_targets(10)]
    r = rules(daily_cap=2, start=date(2021, 5, 12), end=date(2021, 5, 14))
    plan = make_plan(targets, CONSULTANTS, r)
    assert dict(plan.per_consultant) == {"c-alpha": 4, "c-bravo": 0, "c-charlie": 0}
    assert len(plan.uncovered) == 6
    assert {v.site_id for v in plan.visits} == set(rank_order(targets)[:4])


def test_empty_roster() -> None:
    targets = scattered_targets(12)
    plan = make_plan(targets, [], rules())
    assert plan.visits == ()
    assert [u.site_id for u in plan.uncovered] == rank_order(targets)
    assert {u.reason for u in plan.uncovered} == {"no consultant on the roster"}
    assert plan.days_planned == 0
    assert dict(plan.per_consultant) == {}


def test_per_consultant_counts_and_is_read_only() -> None:
    plan = make_plan(scattered_targets(50), CONSULTANTS, rules())
    assert list(plan.per_consultant) == sorted(CONSULTANTS)
    assert sum(plan.per_consultant.values()) == len(plan.visits)
    assert Counter(v.consultant_id for v in plan.visits) == Counter(dict(plan.per_consultant))
    with pytest.raises(TypeError):
        plan.per_consultant["c-alpha"] = 0  # type: ignore[index]


# --------------------------------------------------------------------------- determinism


def test_same_inputs_same_plan() -> None:
    targets = scattered_targets(164)
    assert make_plan(targets, CONSULTANTS, rules()) == make_plan(targets, CONSULTANTS, rules())


def test_input_order_does_not_matter() -> None:
    targets = scattered_targets(164)
    reference = make_plan(targets, CONSULTANTS, rules())
    rng = random.Random(3)
    for _ in range(5):
        shuffled = targets[:]
        rng.shuffle(shuffled)
        roster = CONSULTANTS[:]
        rng.shuffle(roster)
        assert make_plan(shuffled, roster, rules()) == reference


def test_duplicate_roster_entries_count_once() -> None:
    targets = scattered_targets(30)
    assert make_plan(targets, [*CONSULTANTS, "c-alpha"], rules()) == make_plan(
        targets, CONSULTANTS, rules()
    )


# --------------------------------------------------------------------------- inputs


def test_duplicate_site_is_refused() -> None:
    targets = scattered_targets(3)
    with pytest.raises(ValueError, match="twice"):
        make_plan([*targets, targets[0]], CONSULTANTS, rules())


@pytest.mark.parametrize(
    "bad",
    [
        {"cost_per_visit_days": 0.0},
        {"daily_cap": 0},
        {"budget_days": -1.0},
        {"budget_used_days": float("nan")},
    ],
)
def test_invalid_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rules(**bad)


def test_distance_km() -> None:
    assert distance_km(2.6, 50.5, 2.6, 50.5) == 0
    # Paris (Notre-Dame) to Lille (Grand-Place): about 204 km as the crow flies.
    assert distance_km(2.3499, 48.8530, 3.0635, 50.6372) == pytest.approx(204, abs=2)
    assert distance_km(0, 0, 1, 0) == pytest.approx(111.2, abs=0.1)
