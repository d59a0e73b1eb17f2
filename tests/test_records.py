import math

import pytest

from sgpo_curate.records import Query, QueryProfile


def make_query(qid="s/0", answer="4"):
    return Query(
        id=qid, source="s", domain="math", prompt=(("user", "2+2?"),), answer=answer, metadata={"level": 1}
    )


def test_profile_counts_exclude_unverifiable_samples():
    profile = QueryProfile(
        make_query(), "m", rewards=(1.0, 0.0, None, 1.0), completion_tokens=(3, 4, 5, 6), prompt_tokens=7
    )
    assert (profile.num_samples, profile.num_correct, profile.num_unverifiable) == (3, 2, 1)
    assert profile.pass_rate == pytest.approx(2 / 3)


def test_pass_rate_is_nan_when_nothing_verifiable():
    profile = QueryProfile(make_query(), "m", rewards=(None, None), completion_tokens=(1, 1), prompt_tokens=1)
    assert math.isnan(profile.pass_rate)


def test_profile_round_trips_through_a_row():
    profile = QueryProfile(
        make_query(),
        "m",
        rewards=(1.0, None),
        completion_tokens=(3, 4),
        prompt_tokens=7,
        completions=("a", "b"),
    )
    row = profile.to_row()
    assert row["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert QueryProfile.from_row(row) == profile


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="domain"):
        Query(id="x", source="s", domain="poetry", prompt=(("user", "x"),))
    with pytest.raises(ValueError, match="rewards"):
        QueryProfile(make_query(), "m", rewards=(1.0,), completion_tokens=(1, 2), prompt_tokens=1)
