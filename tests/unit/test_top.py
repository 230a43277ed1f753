"""`roi-metrics top` renders the headline figures, the channel table and the alerts; checked
through Rich's recording console on a hand-built state."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from roi_metrics.cardfile import load_cost_card
from roi_metrics.cli.render import ramp_status
from roi_metrics.cli.top import Alerts, fetch_alerts, frame, payback_text
from roi_metrics.domain.events import Counter
from roi_metrics.domain.report import build_report
from roi_metrics.domain.timebuckets import Window
from roi_metrics.state.reader import Snapshot

from tests.unit.helpers import SLACK, WEB

ROOT = Path(__file__).resolve().parents[2]
CARD = load_cost_card(ROOT / "deploy" / "costs.toml")
NOW = 1768435200 + 100 * 86400


def render(*args: object) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(frame(*args))  # type: ignore[arg-type]
    return console.export_text()


def report() -> object:
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    counts = {"web": {**empty, Window.HOURS_24: WEB}, "slack": {**empty, Window.HOURS_24: SLACK}}
    return build_report(Snapshot(NOW, counts), CARD)


def test_a_frame_shows_the_headline_the_channels_and_the_alerts() -> None:
    alerts = Alerts(
        [
            {
                "state": "firing",
                "labels": {"alertname": "SupportChannelResolutionRateDrop", "severity": "critical"},
                "annotations": {"summary": "web: AI resolution rate fell to 5% in the last hour"},
            },
            {"state": "inactive", "labels": {"alertname": "Quiet"}, "annotations": {}},
        ]
    )
    text = render(report(), CARD.target_roi, Window.HOURS_24, alerts)
    assert "Programme ROI 24h" in text and "target" in text and "100.0 %" in text
    # 24h: value 878 (web) + 20 x 6.50 (slack, default price) = 1008 against the AI cost
    # 330 plus the day's fixed cost 1450/9, i.e. 4420/9: ROI = (1008 - 4420/9) / (4420/9)
    assert "105.2 %" in text
    # since go-live, nothing earned: 100 days of 3,500 a month plus 16,000 of one-offs
    assert "-100.0 %" in text and "-27,666.67 USD" in text
    assert "not paid back yet" in text  # since go-live the one-offs are not earned back
    assert "web" in text and "slack" in text and "200" in text  # web's conversations
    assert "firing" in text and "SupportChannelResolutionRateDrop" in text
    assert "Quiet" not in text


def test_a_frame_without_prometheus_or_redis_says_so() -> None:
    text = render(
        None,
        1.0,
        Window.HOURS_24,
        Alerts([], "Prometheus not reachable at x"),
        "cannot read Redis: refused",
    )
    assert "cannot read Redis: refused" in text and "Prometheus not reachable at x" in text


def test_alerts_from_an_unreachable_prometheus_are_an_error_not_a_crash() -> None:
    alerts = fetch_alerts("http://127.0.0.1:1", timeout=0.5)
    assert alerts.alerts == [] and alerts.error is not None
    assert alerts.error.startswith("Prometheus not reachable at http://127.0.0.1:1")


def test_alert_labels_and_annotations_are_shown_as_they_are() -> None:
    """Alert text is untrusted (a label can be any series' value): never Rich markup."""
    alerts = Alerts(
        [
            {
                "state": "firing",
                "labels": {"alertname": "SupportChannelSilent", "severity": ":warning: [/]"},
                "annotations": {"summary": "[bold]Spoof[/bold] [/oops]"},
            },
            {"state": "pending", "labels": "not a dict", "annotations": None},
        ]
    )
    text = render(None, 1.0, Window.HOURS_24, alerts)
    assert "[bold]Spoof[/bold] [/oops]" in text and ":warning: [/]" in text
    assert "pending" not in text  # a malformed alert is no alert of ours, and no crash


def test_only_this_projects_alerts_are_shown() -> None:
    """A Prometheus has other teams' alerts; top shows the ones this project's rules make."""
    alerts = Alerts(
        [
            {"state": "firing", "labels": {"alertname": "NodeDiskFull"}, "annotations": {}},
            {"state": "firing", "labels": {"alertname": "SupportWorkerDown"}, "annotations": {}},
        ]
    )
    text = render(None, 1.0, Window.HOURS_24, alerts)
    assert "SupportWorkerDown" in text and "NodeDiskFull" not in text
    quiet = Alerts([{"state": "firing", "labels": {"alertname": "NodeDiskFull"}}])
    assert "No alert firing or pending." in render(None, 1.0, Window.HOURS_24, quiet)


def test_terminal_escape_sequences_in_alerts_and_names_never_reach_the_terminal() -> None:
    alerts = Alerts(
        [
            {
                "state": "firing",
                "labels": {"alertname": "SupportDeadLetters"},
                "annotations": {"summary": "a\x1b]0;pwned\x07b\x1b[2Jc\x9bd"},
            }
        ]
    )
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    counts = {"web\x1b[31m": {**empty, Window.HOURS_24: WEB}}
    text = render(build_report(Snapshot(NOW, counts), CARD), 1.0, Window.HOURS_24, alerts)
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "a\ufffd]0;pwned\ufffdb\ufffd[2Jc\ufffdd" in text


def test_a_channel_name_from_redis_is_not_markup() -> None:
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    counts = {"[red]web[/red]": {**empty, Window.HOURS_24: WEB}}
    text = render(build_report(Snapshot(NOW, counts), CARD), 1.0, Window.HOURS_24, Alerts([]))
    assert "[red]web[/red]" in text


def test_a_password_in_the_prometheus_url_is_not_shown() -> None:
    alerts = fetch_alerts("http://admin:pr0m-s3cret@127.0.0.1:1", timeout=0.5)
    assert alerts.error is not None and "pr0m-s3cret" not in alerts.error
    assert alerts.error.startswith("Prometheus not reachable at http://admin:****@127.0.0.1:1")


def test_the_headline_says_when_the_programme_pays_back() -> None:
    """CONTRACT.md §14 at the last 30 days' pace (figures of test_exporter.py's payback
    test: 44,000 x 2,592,000 / 24,500 s = 53.9 days)."""
    assert payback_text(report()) == (  # type: ignore[arg-type]
        "not paid back yet; the last 30 days' pace never pays it back"
    )
    earning = {Counter.AI_RESOLUTIONS_CONFIRMED: 2000}
    paying = build_report(
        Snapshot(NOW, {"web": {Window.DAYS_30: earning, Window.ALL: earning}}), CARD
    )
    assert payback_text(paying) == "not paid back yet: about 54 days more at the last 30 days' pace"
    rich = {Counter.AI_RESOLUTIONS_CONFIRMED: 10_000}  # 65,000 of value since go-live
    paid = build_report(Snapshot(NOW, {"web": {Window.DAYS_30: rich, Window.ALL: rich}}), CARD)
    assert payback_text(paid) == "paid back"


def test_the_journey_table_shows_re_contacts_bands_and_where_each_channel_stands_on_its_ramp() -> (
    None
):
    """Day 100 of the programme: every channel here expects 0.2 + 0.4 x (1 - exp(-300/105))
    = 57.7 % (test_exporter.py); the alert line is 57.7 % x (1 - 0.2) = 46.2 %. web 120/160
    has the band 67.8 to 81.1 % (test_figures.py): above; slack 20/50, 27.6 to 53.8 %: on
    (its upper bound is over the line, its lower one under expected); voice 5/100, 2.2 to
    11.2 %: below."""
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    voice = {
        Counter.AI_CONVERSATIONS: 100,
        Counter.CONVERSATIONS: 100,
        Counter.AI_RESOLUTIONS_ASSUMED: 5,
    }
    web = {**WEB, Counter.AI_RECONTACTS: 4}
    counts = {
        name: {**empty, Window.HOURS_24: day}
        for name, day in (("web", web), ("slack", SLACK), ("voice", voice))
    }
    built = build_report(Snapshot(NOW, counts), CARD)
    assert [ramp_status(built, name, 0.2) for name in ("web", "slack", "voice")] == [
        "above",
        "on",
        "below",
    ]
    assert ramp_status(built, "web", None) == "—"  # a card without [ramp]
    text = render(built, CARD.target_roi, Window.HOURS_24, Alerts([]), None)
    assert "Journeys and learning" in text  # no tolerance given: no status
    console = Console(record=True, width=200, color_system=None)
    console.print(frame(built, CARD.target_roi, Window.HOURS_24, Alerts([]), tolerance=0.2))
    rows = {
        line.split()[1]: line.split()
        for line in console.export_text().splitlines()
        if "│" in line and "%" in line and line.split()[1] in counts
    }
    assert rows["web"][3:12] == ["4", "│", "68", "to", "81", "%", "│", "57.7", "%"]
    assert "above" in rows["web"] and "on" in rows["slack"] and "below" in rows["voice"]
