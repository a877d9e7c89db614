"""The Grafana dashboard and the Prometheus rules in deploy/observability ask only for series the
app exports, with labels those series carry and label values the code produces.

What /metrics serves is read from the code, not listed here: the prometheus_client metric objects
of shelfwise.observability.metrics (named the way prometheus_client exposes them) and the gauges its scrape-time
collector yields, with the broker and the database (outside this test) replaced by one made-up
reading. Renaming a metric or a label, changing a histogram bucket, a URL pattern, a queue or an
outcome without updating the dashboard and the rules fails here.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample

from recommendations.models import TrainingJob
from recommendations.serving import engine as serving_engine
from recommendations.serving import metrics as serving_metrics
from shelfwise import celery as platform_celery
from shelfwise.observability import metrics as platform_metrics
from tests.helpers import ROOT

ASSETS = ROOT / "deploy" / "observability"

# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = ("up",)


# --------------------------------------------------------------------------- what the app exports


@dataclass
class Exported:
    """Every sample name /metrics can serve with its label names, the family it belongs to, and,
    where the code fixes them, the values a (family, label) can take."""

    labels: dict[str, frozenset[str]] = field(default_factory=dict)
    family: dict[str, str] = field(default_factory=dict)
    values: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    target_labels: frozenset[str] = frozenset()  # what Prometheus adds to every series it scrapes

    def add(self, family: str, sample: Sample, *, real_values: Iterable[str] = ()) -> None:
        self.labels[sample.name] = self.labels.get(sample.name, frozenset()) | frozenset(sample.labels)
        self.family[sample.name] = family
        for label in real_values:
            if label in sample.labels:
                key = (family, label)
                self.values[key] = self.values.get(key, frozenset()) | {sample.labels[label]}

    def labels_of(self, series: str) -> frozenset[str]:
        return self.labels.get(series, frozenset()) | self.target_labels


def recorded_samples() -> Iterator[tuple[str, Sample]]:
    """The samples of every metric the processes record, as prometheus_client writes them once the
    metric has a value: each metric's twin in a scratch registry, given one labelled child (the real
    metrics are left alone). ``_created`` is left out: multi-process mode, which production runs,
    does not export it."""
    metrics = [
        value
        for module in (platform_metrics, serving_metrics)
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
    ]
    assert metrics, "no prometheus_client metrics found in shelfwise.observability.metrics"
    for metric in metrics:
        registry = CollectorRegistry()
        extra: dict[str, Any] = {"buckets": metric._upper_bounds} if isinstance(metric, Histogram) else {}
        twin = type(metric)(metric._name, metric._documentation, metric._labelnames, registry=registry, **extra)
        if metric._labelnames:
            twin.labels(*("x" for _ in metric._labelnames))
        for family in registry.collect():
            for sample in family.samples:
                if sample.name != f"{family.name}_created":
                    yield family.name, sample


def scrape_time_samples() -> Iterator[tuple[str, Sample]]:
    """The gauges read when scraped (queue lengths, and what the apps registered: the served model
    per store), with the broker and the database replaced by one reading."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(platform_metrics, "_queue_lengths", lambda: dict.fromkeys(platform_metrics.QUEUES, 0))
        patch.setattr(serving_metrics, "_active_models_read", lambda: [("1", 4, 0.25, 3600.0)])
        patch.setattr(serving_metrics, "_active_models", (float("-inf"), []))
        families = list(platform_metrics.StateCollector().collect())
    for family in families:
        assert family.samples, f"scrape-time family {family.name} yielded no sample (did its source fail?)"
        for sample in family.samples:
            yield family.name, sample


def url_routes(patterns: Iterable[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    """Every URL pattern as ResolverMatch.route spells it (the ``route`` label)."""
    for entry in patterns:
        route = prefix + str(entry.pattern).removeprefix("^") if prefix else str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from url_routes(entry.url_patterns, route)
        else:
            yield route


def string_literals(module: ModuleType) -> frozenset[str]:
    """String constants in a module's source: the label values it passes as literals."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    return frozenset(
        node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def scrape_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ASSETS / "prometheus.example.yaml").read_text())
    return config


@pytest.fixture(scope="module")
def exported() -> Exported:
    """What /metrics serves, read from the code; label values where the code fixes them."""
    found = Exported()
    for family, sample in recorded_samples():
        found.add(family, sample, real_values=["le"])
    for family, sample in scrape_time_samples():
        found.add(family, sample, real_values=["queue"])

    jobs = scrape_config()["scrape_configs"]
    relabelled = {
        rule["target_label"] for job in jobs for rule in job.get("relabel_configs", []) if "target_label" in rule
    }
    static = {label for job in jobs for targets in job.get("static_configs", []) for label in targets.get("labels", {})}
    found.target_labels = frozenset(
        {"job", "instance"} | {label for label in relabelled | static if not label.startswith("__")}
    )
    for series in PROMETHEUS_SERIES:
        found.labels[series] = frozenset()
        found.family[series] = series
    found.values[("up", "job")] = frozenset(job["job_name"] for job in jobs)

    # Label values the code fixes, per (family, label); tenant ids and statuses are free.
    routes = frozenset(url_routes(get_resolver().url_patterns)) | {"unmatched"}
    methods = frozenset(platform_metrics._METHODS) | {"other"}
    platform_celery.app.loader.import_default_modules()
    tasks = frozenset(name for name in platform_celery.app.tasks if not name.startswith("celery."))
    for family in ("shelfwise_http_requests", "shelfwise_http_request_duration_seconds"):
        found.values[(family, "route")] = routes
        found.values[(family, "method")] = methods
    for family in (
        "shelfwise_celery_task_duration_seconds",
        "shelfwise_celery_task_failures",
        "shelfwise_celery_task_retries",
    ):
        found.values[(family, "task")] = tasks
    found.values[("shelfwise_celery_task_duration_seconds", "outcome")] = frozenset(
        platform_celery._OUTCOMES.values()
    ) | {"other"}
    found.values[("shelfwise_training_duration_seconds", "outcome")] = frozenset(
        str(status) for status in (TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED)
    )
    # strategy and cache result are literals at the serving engine's call sites
    engine_literals = string_literals(serving_engine)
    found.values[("shelfwise_recommendations", "strategy")] = engine_literals
    found.values[("shelfwise_recommendation_cache", "result")] = engine_literals
    return found


# --------------------------------------------------------------------------- reading PromQL

FUNCTIONS = frozenset(
    """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg
    delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
    histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase irate
    last_over_time ln log10 log2 max_over_time min_over_time minute month pi predict_linear
    present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_desc sqrt
    stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year""".split()  # noqa: SIM905 - a word list reads better than 70 quoted names
)
# They make labels up, which this reading does not follow: extend it before using them.
UNSUPPORTED_FUNCTIONS = frozenset({"label_replace", "label_join"})
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk"}
    | {"quantile", "limitk", "limit_ratio"}
)
GROUPINGS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"})

TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]+\}|\$\w+)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<operator>=~|!~|!=|==|<=|>=|[-+*/%^=<>(){}\[\],@:])
    """,
    re.VERBOSE,
)
PAIRS = {"(": ")", "[": "]", "{": "}"}


@dataclass
class Selector:
    series: str
    matchers: list[tuple[str, str, str]]  # label, operator, value


@dataclass
class Grouping:
    keyword: str
    labels: list[str]
    scope: list[str]  # the series the clause applies to


@dataclass
class Query:
    selectors: list[Selector] = field(default_factory=list)
    groupings: list[Grouping] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read {expr[position : position + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def unquote(token: str) -> str:
    return token[1:-1] if token.startswith("`") else re.sub(r"\\(.)", r"\1", token[1:-1])


class Reader:
    """Reads one PromQL expression token by token for its series selectors and label groupings:
    enough to check names and labels, not a full parser (what it cannot follow is a problem)."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.closing: dict[int, int] = {}
        self.opening: dict[int, int] = {}
        self.selector_at: dict[int, str] = {}
        self.query = Query()

    def read(self) -> Query:
        if not self._pair_brackets():
            return self.query
        clauses: list[tuple[int, str, list[str]]] = []
        index = 0
        while index < len(self.tokens):
            index, clause = self._step(index)
            if clause is not None:
                clauses.append(clause)
        for position, keyword, labels in clauses:
            self.query.groupings.append(Grouping(keyword, labels, self._scope(position, keyword)))
        return self.query

    def _text(self, index: int) -> str:
        return self.tokens[index][1] if 0 <= index < len(self.tokens) else ""

    def _pair_brackets(self) -> bool:
        stack: list[int] = []
        for index, (kind, text) in enumerate(self.tokens):
            if kind == "operator" and text in PAIRS:
                stack.append(index)
            elif kind == "operator" and text in PAIRS.values():
                if not stack or PAIRS[self._text(stack[-1])] != text:
                    self.query.problems.append(f"unbalanced {text!r} in {self.expr!r}")
                    return False
                self.opening[index] = stack.pop()
                self.closing[self.opening[index]] = index
        if stack:
            self.query.problems.append(f"unclosed {self._text(stack[-1])!r} in {self.expr!r}")
        return not stack

    def _step(self, index: int) -> tuple[int, tuple[int, str, list[str]] | None]:
        """Reads what starts at ``index``; returns where to go on, and a grouping clause if it was one."""
        kind, text = self.tokens[index]
        following = self._text(index + 1)
        if kind == "operator" and text in {"{", "["}:  # "[": a range or a subquery, durations only
            if text == "{":
                self.query.problems.append(f"a selector without a series name in {self.expr!r}")
            return self.closing[index] + 1, None
        if kind != "name":
            return index + 1, None
        if text.lower() in GROUPINGS:
            labels: list[str] = []
            end = index
            if following == "(":
                end = self.closing[index + 1]
                labels = [name for kind_, name in self.tokens[index + 2 : end] if kind_ == "name"]
            return end + 1, (index, text.lower(), labels)
        aggregation = text in AGGREGATIONS and (following == "(" or following.lower() in {"by", "without"})
        if text.lower() in KEYWORDS or aggregation:
            return index + 1, None
        if following == "(":
            if text in UNSUPPORTED_FUNCTIONS:
                self.query.problems.append(f"{text}() makes up labels this check does not follow, in {self.expr!r}")
            elif text not in FUNCTIONS:
                self.query.problems.append(f"unknown function {text}() in {self.expr!r}")
            return index + 1, None
        return self._selector(index), None

    def _selector(self, index: int) -> int:
        matchers: list[tuple[str, str, str]] = []
        end = index
        if self._text(index + 1) == "{":
            end = self.closing[index + 1]
            inside = [text for _, text in self.tokens[index + 2 : end]]
            for start in range(0, len(inside), 4):  # label, operator, "value", ","
                label, operator, value = [*inside[start : start + 3], "", "", ""][:3]
                if not value.startswith(('"', "'", "`")):
                    self.query.problems.append(f"cannot read the matchers of {self.expr!r}")
                    break
                matchers.append((label, operator, unquote(value)))
        self.query.selectors.append(Selector(self.tokens[index][1], matchers))
        self.selector_at[index] = self.tokens[index][1]
        return end + 1

    def _scope(self, position: int, keyword: str) -> list[str]:
        """The series a grouping clause at ``position`` applies to."""
        if keyword in {"by", "without"} and self._text(position - 1) in AGGREGATIONS:  # sum by (x) (...)
            start = self.closing.get(position + 1, position) + 1
            end = self.closing.get(start, start)
        elif keyword in {"by", "without"}:  # sum (...) by (x)
            start, end = self.opening.get(position - 1, position - 1), position - 1
        else:  # on / ignoring / group_left / group_right: the innermost parentheses around them
            around = [
                start for start, end in self.closing.items() if start < position < end and self._text(start) == "("
            ]
            start = max(around, default=-1)
            end = self.closing.get(start, len(self.tokens))
        return [series for at, series in self.selector_at.items() if start < at < end]


def parse(expr: str) -> Query:
    return Reader(expr).read()


def alternatives(regex: str) -> list[str]:
    """A regex's top-level alternatives (``a|b(c|d)`` → ``a``, ``b(c|d)``)."""
    parts, depth, current, escaped = [], 0, "", False
    for char in regex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def value_problems(series: str, label: str, operator: str, value: str, exported: Exported) -> list[str]:
    """A matcher's values the code never produces (a typo in a negative matcher hides as well)."""
    known = exported.values.get((exported.family[series], label))
    if known is None or "$" in value:  # free values (tenant ids, statuses) or a dashboard variable
        return []
    if operator in {"=", "!="}:
        unknown = [value] if value and value not in known else []
    else:  # every alternative of =~ / !~ must match something real
        unknown = [part for part in alternatives(value) if not any(re.fullmatch(part, known_) for known_ in known)]
    return [f'{series}{{{label}{operator}"{part}"}}: no such {label} in the code' for part in unknown]


def problems_in(expr: str, exported: Exported, *, output_labels: Iterable[str] = ()) -> list[str]:
    """Why ``expr`` would find nothing (or not what it says): unknown series, labels, label values;
    ``output_labels`` (legends, alert annotations) must be on every series it reads."""
    query = parse(expr)
    problems = list(query.problems)
    for selector in query.selectors:
        if selector.series not in exported.labels:
            problems.append(f"{selector.series}: not a series the app exports")
            continue
        for label, operator, value in selector.matchers:
            if label not in exported.labels_of(selector.series):
                problems.append(f"{selector.series} has no label {label}")
            else:
                problems.extend(value_problems(selector.series, label, operator, value, exported))
    for grouping in query.groupings:
        scope = [series for series in grouping.scope if series in exported.labels]
        for label in grouping.labels:
            lacking = [series for series in scope if label not in exported.labels_of(series)]
            strict = grouping.keyword in {"by", "without"}
            if (lacking and strict) or (scope and len(lacking) == len(scope)):
                problems.append(f"{grouping.keyword} ({label}): not a label of {', '.join(lacking)}")
    read = {selector.series for selector in query.selectors if selector.series in exported.labels}
    for label in output_labels:
        lacking = sorted(series for series in read if label not in exported.labels_of(series))
        if lacking:
            problems.append(f"{label} (in a legend or annotation) is not a label of {', '.join(lacking)}")
    return problems


# --------------------------------------------------------------------------- the assets


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ASSETS / "grafana-dashboard.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((ASSETS / "alerts.yaml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def legend_labels(text: str) -> list[str]:
    return re.findall(r"\{\{\s*(\w+)\s*\}\}", text)


def test_dashboard_queries_only_exported_series_and_labels(dashboard: dict[str, Any], exported: Exported) -> None:
    problems = []
    queries = 0
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            queries += 1
            found = problems_in(target["expr"], exported, output_labels=legend_labels(target.get("legendFormat", "")))
            problems += [f"panel {panel['title']!r} {target['refId']}: {problem}" for problem in found]
    assert queries >= 20
    assert problems == []


def test_dashboard_variables_and_datasources(dashboard: dict[str, Any], exported: Exported) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert dashboard["schemaVersion"] >= 36
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    problems = []
    for name in ("tenant", "route"):
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variables[name]["query"])
        assert match is not None, variables[name]["query"]
        assert match.group(2) == name
        problems += problems_in(match.group(1), exported, output_labels=[match.group(2)])
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert problems == []

    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["gridPos"]["w"] > 0, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            sources = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
            assert all(source == {"type": "prometheus", "uid": "${datasource}"} for source in sources), panel["title"]


def test_alert_rules_query_only_exported_series_and_labels(rules: list[dict[str, Any]], exported: Exported) -> None:
    problems = []
    for rule in rules:
        annotations = " ".join(rule.get("annotations", {}).values())
        used = re.findall(r"\$labels\.(\w+)", annotations)
        problems += [
            f"{rule['alert']}: {problem}" for problem in problems_in(rule["expr"], exported, output_labels=used)
        ]
    assert problems == []


def test_alert_rules_are_complete(rules: list[dict[str, Any]]) -> None:
    readme = (ASSETS / "README.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in
               re.findall(r"^#+ (.+)$", readme, flags=re.M)}  # fmt: skip
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        document, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert document == "deploy/observability/README.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in {document}"
        assert re.fullmatch(r"(\d+[smh])+", rule.get("for", "0s")), rule["alert"]


def test_alert_unit_tests_feed_series_the_app_exports(exported: Exported) -> None:
    unit_tests = yaml.safe_load((ASSETS / "alerts.test.yaml").read_text())
    assert unit_tests["rule_files"] == ["alerts.yaml"]
    problems = []
    for case in unit_tests["tests"]:
        for series in case["input_series"]:
            problems += [f"{case['name']}: {problem}" for problem in problems_in(series["series"], exported)]
    assert problems == []


def test_scrape_config_sends_the_metrics_token_and_loads_the_rules() -> None:
    config = scrape_config()
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"]
    assert [(ASSETS / path).resolve() for path in config["rule_files"]] == [(ASSETS / "alerts.yaml").resolve()]


def test_label_values_are_known_for_exported_families(exported: Exported) -> None:
    # A family renamed in the code but not in the table above would silently lose its value checks.
    assert {family for family, _ in exported.values} <= set(exported.family.values())


def test_the_check_finds_renamed_series_labels_and_values(exported: Exported) -> None:
    wrong = {
        'sum(rate(shelfwise_http_request_total{route="metrics"}[5m]))': "not a series",
        "sum by (queue) (rate(shelfwise_http_requests_total[5m]))": "by (queue)",
        "sum(rate(shelfwise_http_requests_total[5m])) by (path)": "by (path)",
        'shelfwise_training_duration_seconds_count{outcome="failure"}': "no such outcome",
        'shelfwise_celery_task_duration_seconds_count{outcome="failed"}': "no such outcome",
        'shelfwise_http_request_duration_seconds_bucket{le="0.015"}': "no such le",
        'shelfwise_http_requests_total{route=~"metrics|api/v1/customers/<id>/recommendations"}': "no such route",
        'shelfwise_celery_queue_length{queue="training", tenant="1"}': "no label tenant",
        "histogram_quantile(0.99, sum by (le) (rate(shelfwise_onnx_scoring_seconds[5m])))": "not a series",
        "histogram_quantil(0.99, shelfwise_onnx_scoring_seconds_bucket)": "unknown function",
        "max by (tenant) (shelfwise_model_active_age) > 86400": "not a series",
        'up{job="prometheus"} == 0': "no such job",
    }
    for expr, expected in wrong.items():
        found = problems_in(expr, exported)
        assert expected in " ".join(found), (expr, found)
    assert problems_in("sum by (tenant) (rate(shelfwise_recommendations_total[5m]))", exported, output_labels=["queue"])
    assert not problems_in('max by (queue) (shelfwise_celery_queue_length{queue="scoring"}) > 0', exported)
    bucket = 'shelfwise_http_request_duration_seconds_bucket{le="0.025"}'
    assert not problems_in(
        f"histogram_quantile(0.99, sum by (route, le) (rate({bucket}[5m])))", exported, output_labels=["route"]
    )


PROMTOOL_LOCAL = ROOT / ".dev/promtool/usr/bin/promtool"


def promtool() -> str | None:
    """promtool from $PROMTOOL, the PATH, or .dev/promtool — unpacked there from Debian's
    `prometheus` package when apt-get is available (not installed: no service is started).
    None only where there is neither (then the checks above are all that run)."""
    candidates = [os.environ.get("PROMTOOL", ""), shutil.which("promtool") or "", str(PROMTOOL_LOCAL)]
    found = next((path for path in candidates if path and os.access(path, os.X_OK)), None)
    if found is not None or shutil.which("apt-get") is None:
        return found
    download = ROOT / ".dev/tmp/promtool-download"
    download.mkdir(parents=True, exist_ok=True)

    def fetch() -> bool:
        got = subprocess.run(["apt-get", "download", "-qq", "prometheus"], cwd=download, capture_output=True,
                             check=False, timeout=600)  # fmt: skip
        return got.returncode == 0

    if not fetch() and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False, timeout=600)
        fetch()
    package = next(download.glob("prometheus_*.deb"), None)
    if package is None:
        pytest.fail("could not fetch Debian's prometheus package for promtool (apt-get download prometheus)")
    subprocess.run(["dpkg-deb", "-x", str(package), str(ROOT / ".dev/promtool")], check=True, timeout=300)
    shutil.rmtree(download)
    return str(PROMTOOL_LOCAL)


def test_promtool_accepts_the_rules_the_config_and_the_dashboard_queries(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    binary = promtool()
    if binary is None:
        pytest.skip("no promtool and no apt-get to fetch it: see deploy/observability/README.md")

    def run(*args: str, cwd: Path = ASSETS) -> None:
        done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    run("check", "rules", "alerts.yaml")
    run("test", "rules", "alerts.test.yaml")

    # The config as written, but with a token file that exists and a fixed target (Debian's
    # promtool is built without Kubernetes discovery).
    config = scrape_config()
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(token)
        job.pop("kubernetes_sd_configs", None)
        job["static_configs"] = [{"targets": ["127.0.0.1:8000"]}]
    shutil.copy(ASSETS / "alerts.yaml", tmp_path / "alerts.yaml")
    (tmp_path / "prometheus.yaml").write_text(yaml.safe_dump(config))
    run("check", "config", "prometheus.yaml", cwd=tmp_path)

    # Every dashboard query as a recording rule, Grafana's variables filled in.
    fill = {"$__rate_interval": "5m", "$tenant": ".*", "$route": ".*"}
    recorded = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in fill.items():
                expr = expr.replace(variable, value)
            recorded.append({"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr})
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    run("check", "rules", "dashboard.yaml", cwd=tmp_path)
