import datetime as dt

from roi_metrics.domain.timebuckets import DAY, HOUR, MINUTE, ROLLING_BY_WINDOW, Window


def ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def test_buckets_are_utc_aligned() -> None:
    t = ts("2026-03-01T10:30:15+02:00")  # 08:30:15 UTC
    assert MINUTE.bucket_start(t) == ts("2026-03-01T08:30:00+00:00")
    assert HOUR.bucket_start(t) == ts("2026-03-01T08:00:00+00:00")
    assert DAY.bucket_start(t) == ts("2026-03-01T00:00:00+00:00")
    assert MINUTE.bucket_start(-1) == -60


def test_window_edges_hand_computed() -> None:
    t = ts("2026-03-01T10:30:15+00:00")
    one_hour = ROLLING_BY_WINDOW[Window.HOUR_1].bucket_starts(t)
    assert len(one_hour) == 60
    assert one_hour[0] == ts("2026-03-01T09:31:00+00:00")
    assert one_hour[-1] == ts("2026-03-01T10:30:00+00:00")

    day = ROLLING_BY_WINDOW[Window.HOURS_24].bucket_starts(t)
    assert (len(day), day[0], day[-1]) == (
        24,
        ts("2026-02-28T11:00:00+00:00"),
        ts("2026-03-01T10:00:00+00:00"),
    )
    week = ROLLING_BY_WINDOW[Window.DAYS_7].bucket_starts(t)
    assert (len(week), week[0]) == (7, ts("2026-02-23T00:00:00+00:00"))
    month = ROLLING_BY_WINDOW[Window.DAYS_30].bucket_starts(t)
    assert (len(month), month[0], month[-1]) == (
        30,
        ts("2026-01-31T00:00:00+00:00"),
        ts("2026-03-01T00:00:00+00:00"),
    )


def test_nominal_lengths() -> None:
    lengths = {window: rolling.nominal_seconds for window, rolling in ROLLING_BY_WINDOW.items()}
    assert lengths == {
        Window.HOUR_1: 3600,
        Window.HOURS_24: 86400,
        Window.DAYS_7: 604800,
        Window.DAYS_30: 2592000,
    }


def test_a_bucket_expires_after_its_longest_window_plus_slack() -> None:
    start = ts("2026-03-01T00:00:00+00:00")
    assert DAY.expires_at(start) == start + 32 * 86400
    assert MINUTE.expires_at(start) == start + 66 * 60
