"""Deployment files (infra/, Dockerfile): they parse, agree with each other, use only metrics that
streams/metrics.py defines, and pass promtool / kubectl kustomize when those tools are installed.

Needs PyYAML (``pyyaml`` in the test extras). promtool comes with the Debian package
``prometheus`` (``apt-get install -y --no-install-recommends prometheus``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DASHBOARD = INFRA / "grafana" / "dashboards" / "payee-stream.json"
ALERTS = INFRA / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = INFRA / "prometheus" / "prometheus.yml"
COMPOSE = INFRA / "docker-compose.yml"
K8S = INFRA / "k8s"
README = INFRA / "README.md"
DOCKERFILE = ROOT / "Dockerfile"

WORKER_JOB = "payee-stream-worker"
SINK_JOB = "payee-stream-sink"
# Exported outside the REGISTRY's metric objects: the lag is collected at scrape time
# (streams/views.py), `up` is Prometheus' own.
EXTRA_METRICS = {"payee_stream_consumer_lag", "up"}
# Settings the deployment passes that streams/settings.py does not declare (yet): the sink's
# metrics port comes with the sink command.
EXTRA_SETTINGS = {"PAYEE_STREAM_SINK_METRICS_PORT"}


# --------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def yaml() -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("PyYAML is missing: add `pyyaml` to [project.optional-dependencies].test")
    return yaml


def load_yaml(yaml: Any, path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_docs(yaml: Any, path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def known_metric_names() -> set[str]:
    """Every series name the workers and the sink expose, from the metric definitions."""
    from streams.metrics import REGISTRY

    names = set(EXTRA_METRICS)
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (not functions, labels or keywords)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals, incl. label values
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables ($__rate_interval, ${instance})
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)  # range and subquery selectors
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?\w+", " ", s)
    s = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", s)  # numbers
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        token = match.group(0)
        if s[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if token.lower() in PROMQL_KEYWORDS:
            continue
        names.add(token)
    return names


def promql_jobs(expr: str) -> set[str]:
    return set(re.findall(r'\bjob\s*=\s*"([^"]+)"', expr))


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return panels


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        (panel["title"], target["expr"])
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            text = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", text)
            exprs.append((f"variable {variable['name']}", inner.group(1) if inner else text))
    return exprs


def alert_rules(yaml: Any) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(yaml, ALERTS)["groups"] for rule in group["rules"]]


def setting_env_names() -> set[str]:
    return {f"PAYEE_STREAM_{name.upper()}" for name in Settings.model_fields} | EXTRA_SETTINGS


def run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


requires_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not on PATH (apt-get install -y --no-install-recommends prometheus)",
)


# ------------------------------------------------------------------------- PromQL name extractor


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (topic) (rate(payee_stream_records_in_total{topic="payees.raw"}[$__rate_interval]))',
         {"payee_stream_records_in_total"}),
        ("histogram_quantile(0.99, sum by (le, stage) (rate(a_bucket[5m])))", {"a_bucket"}),
        ("deriv((sum by (job, topic) (lag))[10m:1m]) > 0 and on() up == 1e-9", {"lag", "up"}),
        ('(sum(rate(x_total[10m])) or vector(0)) == 0 and on() absent(up{job="w"} == 1)', {"x_total", "up"}),
        ("a / ignoring(instance) group_left b offset 5m", {"a", "b"}),
    ],
)  # fmt: skip
def test_promql_metric_names_finds_metrics_only(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_known_metric_names_cover_the_registry() -> None:
    names = known_metric_names()
    assert "payee_stream_records_in_total" in names
    assert "payee_stream_stage_latency_seconds_bucket" in names
    assert "payee_stream_llm_breaker_open" in names
    assert "payee_stream_records_in" not in names


# ------------------------------------------------------------------------------------ dashboard


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "payee-stream"
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = dashboard_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    visual = [panel for panel in panels if panel["type"] != "row"]
    assert len(visual) >= 20
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in visual:
        assert panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
        if panel["type"] == "heatmap":
            assert all(target.get("format") == "heatmap" for target in panel["targets"])


def test_dashboard_panels_do_not_overlap() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard_panels(dashboard):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_dashboard_queries_use_only_defined_metrics() -> None:
    known = known_metric_names()
    used: set[str] = set()
    for title, expr in dashboard_exprs():
        names = promql_metric_names(expr)
        assert names, f"{title!r}: no metric in {expr!r}"
        assert names <= known, f"{title!r} uses unknown metrics {sorted(names - known)}"
        used |= names
    # The dashboard covers the whole pipeline: every payee_stream metric appears somewhere.
    payee_metrics = {name for name in known if name.startswith("payee_stream_")}
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in payee_metrics}
    used_families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert families <= used_families, f"metrics without a panel: {sorted(families - used_families)}"


def test_every_selector_names_its_job(yaml: Any) -> None:
    """Workers and sink share one REGISTRY, so the sink also exports the worker gauges (at 0) and
    vice versa: a selector without a job matcher mixes the two (e.g. index_ready == 0 on the sink)."""
    exprs = [(title, expr) for title, expr in dashboard_exprs()]
    exprs += [(rule["alert"], rule["expr"]) for rule in alert_rules(yaml)]
    for title, expr in exprs:
        for match in re.finditer(r"\b(payee_stream_\w+|up)\b(\{[^}]*\})?", expr):
            assert match.group(2) and "job=" in match.group(2), f"{title}: {match.group(0)} lacks job=..."


def test_dashboard_and_rules_select_scraped_jobs(yaml: Any) -> None:
    config = load_yaml(yaml, PROMETHEUS_CONFIG)
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    assert {WORKER_JOB, SINK_JOB} <= jobs
    exprs = [expr for _, expr in dashboard_exprs()] + [rule["expr"] for rule in alert_rules(yaml)]
    for expr in exprs:
        assert promql_jobs(expr) <= jobs, expr


def test_grafana_provisioning_matches_the_dashboard_and_compose(yaml: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    provisioning = INFRA / "grafana" / "provisioning"
    datasources = load_yaml(yaml, provisioning / "datasources" / "prometheus.yml")["datasources"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    default = variables["datasource"]
    assert default["current"]["value"] in {datasource["uid"] for datasource in datasources}
    assert any(datasource["url"] == "http://prometheus:9090" for datasource in datasources)
    providers = load_yaml(yaml, provisioning / "dashboards" / "payee-stream.yml")["providers"]
    grafana = load_yaml(yaml, COMPOSE)["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == providers[0]["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# --------------------------------------------------------------------------------------- alerts


def test_alert_rules_are_complete(yaml: Any) -> None:
    rules = alert_rules(yaml)
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    readme = README.read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{2,4} (.+)$", readme, flags=re.MULTILINE)
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule.get("for"), f"{rule['alert']} fires on a single evaluation"
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        page, _, anchor = annotations["runbook"].partition("#")
        runbook = f"{rule['alert']}: runbook {annotations['runbook']}"
        assert (ROOT / page) == README and anchor in anchors, runbook
        assert rule["alert"] in readme, f"{rule['alert']} missing from the README's alert table"


def test_alert_rules_cover_the_brief(yaml: Any) -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules(yaml)}
    assert "deriv(" in exprs["PayeeStreamConsumerLagGrowing"]
    assert "payee_stream_dead_letters_total" in exprs["PayeeStreamDeadLetterRatioHigh"]
    assert "payee_stream_records_in_total" in exprs["PayeeStreamDeadLetterRatioHigh"]
    assert "payee_stream_llm_breaker_open" in exprs["PayeeStreamLlmBreakerOpen"]
    assert "payee_stream_sink_backlog" in exprs["PayeeStreamSinkBacklogHigh"]
    assert "payee_stream_sink_errors_total" in exprs["PayeeStreamSinkErrors"]
    assert "payee_stream_consumer_lag" in exprs["PayeeStreamNoThroughput"]
    assert "up{" in exprs["PayeeStreamWorkerDown"]
    assert "payee_stream_supplier_index_ready" in exprs["PayeeStreamSupplierIndexNotReady"]


def test_alert_rules_use_only_defined_metrics(yaml: Any) -> None:
    known = known_metric_names()
    for rule in alert_rules(yaml):
        names = promql_metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, f"{rule['alert']} uses unknown metrics {sorted(names - known)}"


@requires_promtool
def test_promtool_accepts_rules_and_config() -> None:
    rules = run(["promtool", "check", "rules", str(ALERTS)])
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = run(["promtool", "check", "config", PROMETHEUS_CONFIG.name], cwd=PROMETHEUS_CONFIG.parent)
    assert config.returncode == 0, config.stdout + config.stderr


# promtool rule unit tests. Annotations are stripped from a copy of the rules, so these check when
# alerts fire (the expressions and `for`), not their wording.
LABELS = {"service": "payee-stream"}
W = f'job="{WORKER_JOB}"'
REVIEW = 'job="payee-stream-review"'
PROMTOOL_CASES: list[dict[str, Any]] = [
    {  # a stalled partition for two minutes: fires after one
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_delivery_stalled_partitions{{{W},instance="w1"}}', "values": "0 0 1 1 1 1"},
            {"series": f'payee_stream_delivery_stalled_partitions{{{W},instance="w2"}}', "values": "0x6"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "PayeeStreamDeliveryStalled", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "PayeeStreamDeliveryStalled",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical", "job": WORKER_JOB, "instance": "w1"}}]},
        ],
    },
    {  # oldest review item ages one minute per minute from 1 h; the threshold is 90 minutes
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_review_oldest_item_age_seconds{{{REVIEW},instance="r1"}}', "values": "3600+60x60"},
            {"series": f'payee_stream_review_max_age_seconds{{{REVIEW},instance="r1"}}', "values": "5400x60"},
        ],
        "alert_rule_test": [
            {"eval_time": "40m", "alertname": "PayeeStreamReviewBacklogStale", "exp_alerts": []},
            {"eval_time": "50m", "alertname": "PayeeStreamReviewBacklogStale",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": "payee-stream-review"}}]},
        ],
    },
    {  # lag of 500 more records every minute: fires once above 5000 and growing for 10 minutes
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_consumer_lag{{{W},instance="w1",topic="payees.raw",partition="0"}}',
             "values": "0+500x40"},
            {"series": f'payee_stream_consumer_lag{{{W},instance="w2",topic="payees.enriched",partition="0"}}',
             "values": "20000x40"},  # high but flat: not growing
        ],
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "PayeeStreamConsumerLagGrowing", "exp_alerts": []},
            {"eval_time": "30m", "alertname": "PayeeStreamConsumerLagGrowing",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": WORKER_JOB, "topic": "payees.raw"}}]},
        ],
    },
    {  # consumed counter flat while records wait
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_records_in_total{{{W},instance="w1",topic="payees.raw"}}', "values": "100x30"},
            {"series": f'payee_stream_consumer_lag{{{W},instance="w1",topic="payees.raw",partition="3"}}', "values": "50x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "PayeeStreamNoThroughput",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical"}}]},
        ],
    },
    {  # consuming: no alert, although lag is positive
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_records_in_total{{{W},instance="w1",topic="payees.raw"}}', "values": "0+60x30"},
            {"series": f'payee_stream_consumer_lag{{{W},instance="w1",topic="payees.raw",partition="3"}}', "values": "50x30"},
        ],
        "alert_rule_test": [{"eval_time": "20m", "alertname": "PayeeStreamNoThroughput", "exp_alerts": []}],
    },
    {  # workers never consumed anything yet (no counter series) while records wait
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_consumer_lag{{{W},instance="w1",topic="payees.raw",partition="3"}}', "values": "50x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "PayeeStreamNoThroughput",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical"}}]},
        ],
    },
    {  # 2% dead letters: warning only; 20%: warning and critical
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_records_in_total{{{W},instance="w1",topic="payees.raw"}}', "values": "0+600x40"},
            {"series": f'payee_stream_dead_letters_total{{{W},instance="w1",stage="validate",reason="malformed_json"}}',
             "values": "0+12x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "PayeeStreamDeadLetterRatioHigh",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning"}}]},
            {"eval_time": "30m", "alertname": "PayeeStreamDeadLetterRatioCritical", "exp_alerts": []},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_records_in_total{{{W},instance="w1",topic="payees.raw"}}', "values": "0+600x40"},
            {"series": f'payee_stream_dead_letters_total{{{W},instance="w1",stage="match",reason="timeout"}}',
             "values": "0+120x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "PayeeStreamDeadLetterRatioCritical",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical"}}]},
        ],
    },
    {  # breaker open on w1 for 10 minutes, closed on w2
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_llm_breaker_open{{{W},instance="w1"}}', "values": "1x10"},
            {"series": f'payee_stream_llm_breaker_open{{{W},instance="w2"}}', "values": "0x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "PayeeStreamLlmBreakerOpen", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "PayeeStreamLlmBreakerOpen",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": WORKER_JOB, "instance": "w1"}}]},
        ],
    },
    {  # the sink only fails
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_sink_errors_total{{job="{SINK_JOB}",instance="s1"}}', "values": "0+5x20"},
            {"series": f'payee_stream_sink_rows_written_total{{job="{SINK_JOB}",instance="s1",table="payees"}}',
             "values": "100x20"},
            {"series": f'payee_stream_sink_backlog{{job="{SINK_JOB}",instance="s1"}}', "values": "0+1000x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "PayeeStreamSinkStalled",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical"}}]},
            {"eval_time": "15m", "alertname": "PayeeStreamSinkErrors",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": SINK_JOB, "instance": "s1"}}]},
            {"eval_time": "25m", "alertname": "PayeeStreamSinkBacklogHigh",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": SINK_JOB, "instance": "s1"}}]},
        ],
    },
    {  # one worker down among two; the sink is up
        "interval": "1m",
        "input_series": [
            {"series": f'up{{{W},instance="w1"}}', "values": "0x10"},
            {"series": f'up{{{W},instance="w2"}}', "values": "1x10"},
            {"series": f'up{{job="{SINK_JOB}",instance="s1"}}', "values": "1x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "PayeeStreamWorkerDown",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": WORKER_JOB, "instance": "w1"}}]},
            {"eval_time": "5m", "alertname": "PayeeStreamAllWorkersDown", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "PayeeStreamSinkDown", "exp_alerts": []},
        ],
    },
    {  # no worker target at all, sink down
        "interval": "1m",
        "input_series": [{"series": f'up{{job="{SINK_JOB}",instance="s1"}}', "values": "0x10"}],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "PayeeStreamAllWorkersDown",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical", "job": WORKER_JOB}}]},
            {"eval_time": "5m", "alertname": "PayeeStreamSinkDown",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical", "job": SINK_JOB}}]},
        ],
    },
    {  # w1 never gets ready, w2 does; w2 lags 1000 suppliers behind
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_supplier_index_ready{{{W},instance="w1"}}', "values": "0x40"},
            {"series": f'payee_stream_supplier_index_ready{{{W},instance="w2"}}', "values": "0 1x40"},
            {"series": f'payee_stream_supplier_index_size{{{W},instance="w1"}}', "values": "350000x40"},
            {"series": f'payee_stream_supplier_index_size{{{W},instance="w2"}}', "values": "349000x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "PayeeStreamSupplierIndexNotReady", "exp_alerts": []},
            {"eval_time": "10m", "alertname": "PayeeStreamSupplierIndexNotReady",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": WORKER_JOB, "instance": "w1"}}]},
            {"eval_time": "35m", "alertname": "PayeeStreamSupplierIndexDiverged",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": WORKER_JOB}}]},
            {"eval_time": "35m", "alertname": "PayeeStreamSupplierIndexEmpty", "exp_alerts": []},
        ],
    },
    {  # the sink process exports the worker gauges too, at 0 (shared REGISTRY): they must not alert
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_supplier_index_ready{{job="{SINK_JOB}",instance="s1"}}', "values": "0x30"},
            {"series": f'payee_stream_supplier_index_size{{job="{SINK_JOB}",instance="s1"}}', "values": "0x30"},
            {"series": f'payee_stream_supplier_index_ready{{{W},instance="w1"}}', "values": "1x30"},
            {"series": f'payee_stream_supplier_index_size{{{W},instance="w1"}}', "values": "350000x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "25m", "alertname": "PayeeStreamSupplierIndexNotReady", "exp_alerts": []},
            {"eval_time": "25m", "alertname": "PayeeStreamSupplierIndexEmpty", "exp_alerts": []},
            {"eval_time": "25m", "alertname": "PayeeStreamSupplierIndexDiverged", "exp_alerts": []},
        ],
    },
    {  # poison-flood guard trips on w1; the sink rejects a record
        "interval": "1m",
        "input_series": [
            {"series": f'payee_stream_dlq_guard_tripped{{{W},instance="w1"}}', "values": "0 0 1x10"},
            {"series": f'payee_stream_sink_rejected_total{{job="{SINK_JOB}",instance="s1",topic="payees.audit"}}',
             "values": "0 0 1x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "PayeeStreamDeadLetterGuardTripped",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "critical", "job": WORKER_JOB, "instance": "w1"}}]},
            {"eval_time": "9m", "alertname": "PayeeStreamSinkRejectedRecords",
             "exp_alerts": [{"exp_labels": {**LABELS, "severity": "warning", "job": SINK_JOB, "topic": "payees.audit"}}]},
        ],
    },
]  # fmt: skip


@requires_promtool
def test_promtool_rule_unit_tests(yaml: Any, tmp_path: Path) -> None:
    rules = load_yaml(yaml, ALERTS)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": PROMTOOL_CASES}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    result = run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# -------------------------------------------------------------------------------------- compose


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_compose_kafka_is_a_three_node_kraft_quorum(yaml: Any) -> None:
    services = load_yaml(yaml, COMPOSE)["services"]
    brokers = {
        name: compose_env(service) for name, service in services.items() if re.fullmatch(r"kafka-\d", name)
    }
    assert len(brokers) == 3
    node_ids = {env["KAFKA_NODE_ID"] for env in brokers.values()}
    assert len(node_ids) == 3
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in brokers.values()}
    assert len(voters) == 1, "every node needs the same voter list"
    expected = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in brokers.items()}
    assert set(voters.pop().split(",")) == expected
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    for name, env in brokers.items():
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert f"PLAINTEXT://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
        assert services[name]["healthcheck"]["test"]


def test_compose_payee_services_are_wired(yaml: Any) -> None:
    services = load_yaml(yaml, COMPOSE)["services"]
    brokers = {name for name in services if re.fullmatch(r"kafka-\d", name)}
    known_env = setting_env_names()
    for role, command in {"migrate": ["db", "migrate"], "worker": ["worker"], "sink": ["sink"]}.items():
        service = services[role]
        assert service["command"] == command
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        env = compose_env(service)
        assert set(env) <= known_env, f"{role}: unknown settings {sorted(set(env) - known_env)}"
        assert env["PAYEE_STREAM_REPLICATION_FACTOR"] == "3"
        assert env["PAYEE_STREAM_PARTITIONS"] == "12"
        assert env["PAYEE_STREAM_WEB_HOST"] == "0.0.0.0"
        hosts = {url.split("://")[-1].split(":")[0] for url in env["PAYEE_STREAM_BROKER_URL"].split(",")}
        assert hosts == brokers
        assert "@postgres:5432/" in env["PAYEE_STREAM_POSTGRES_DSN"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for role in ("worker", "sink"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[role]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    worker = services["worker"]
    assert 1 <= worker["deploy"]["replicas"] <= 12
    assert "1536m" in json.dumps(worker["deploy"]["resources"])
    init = "\n".join(services["kafka-init"]["command"])
    assert "--partitions 12 --replication-factor 3" in init and "min.insync.replicas=2" in init
    settings = Settings()
    for topic in (settings.topic_raw, settings.topic_enriched, settings.topic_review, settings.topic_audit,
                  settings.topic_dlq, settings.topic_llm, settings.topic_merchant):  # fmt: skip
        assert topic in init
    assert f"--topic {settings.topic_suppliers} --config cleanup.policy=compact" in init


def test_compose_mounts_and_scrape_targets_exist(yaml: Any) -> None:
    compose = load_yaml(yaml, COMPOSE)
    services = compose["services"]
    named_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = re.fullmatch(r"(.+?):(/[^:]*)(?::(?:ro|rw))?", volume).group(1)
            if source.startswith("$"):
                continue  # an operator-supplied directory
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in named_volumes, f"{name}: volume {source} not declared"
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    config = load_yaml(yaml, PROMETHEUS_CONFIG)
    assert [(PROMETHEUS_CONFIG.parent / path).resolve() for path in config["rule_files"]] == [ALERTS]
    ports = {"worker": "6066", "sink": "6067", "review": "6070"}
    for scrape in config["scrape_configs"]:
        for sd in scrape.get("dns_sd_configs", []):
            for target in sd["names"]:
                assert target in services, scrape["job_name"]
                assert str(sd["port"]) == ports[target]
                assert ports[target] in services[target]["expose"]


def test_kafka_init_script_is_valid_bash(yaml: Any, tmp_path: Path) -> None:
    init = load_yaml(yaml, COMPOSE)["services"]["kafka-init"]
    assert init["entrypoint"][0] == "/bin/bash"
    script = tmp_path / "init.sh"
    script.write_text("\n".join(init["command"]).replace("$$", "$"), encoding="utf-8")
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_is_valid(tmp_path: Path) -> None:
    """`docker compose config` (v2) or, failing that, docker-compose 1.29 (Debian's
    `docker-compose` package), whose schema predates the top-level `name`."""
    docker = shutil.which("docker")
    if docker is not None and run([docker, "compose", "version"]).returncode == 0:
        result = run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"])
    elif shutil.which("docker-compose") is not None:
        legacy = tmp_path / "docker-compose.yml"
        legacy.write_text(re.sub(r"^name: .*$", "", COMPOSE.read_text(encoding="utf-8"), flags=re.MULTILINE))
        result = run(["docker-compose", "-f", str(legacy), "--project-directory", str(COMPOSE.parent),
                      "-p", "payee-stream", "config", "--quiet"])  # fmt: skip
    else:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------ kubernetes


def k8s_documents(yaml: Any) -> dict[str, list[dict[str, Any]]]:
    docs = {}
    for path in sorted(K8S.rglob("*.yaml")):
        docs[str(path.relative_to(K8S))] = load_yaml_docs(yaml, path)
    return docs


def k8s_objects(yaml: Any) -> list[dict[str, Any]]:
    return [
        doc
        for docs in k8s_documents(yaml).values()
        for doc in docs
        if doc.get("kind") != "Kustomization"
    ]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def test_k8s_manifests_parse_and_kustomizations_list_existing_files(yaml: Any) -> None:
    documents = k8s_documents(yaml)
    assert documents
    for path, docs in documents.items():
        assert docs, f"{path} is empty"
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path
    kustomizations = [path for path in K8S.rglob("kustomization.yaml")]
    assert len(kustomizations) == 3
    listed = set()
    for path in kustomizations:
        for resource in load_yaml(yaml, path)["resources"]:
            assert (path.parent / resource).is_file(), f"{path}: {resource}"
            listed.add((path.parent / resource).resolve())
    unlisted = {path.name for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml"} - {
        path.name for path in listed
    }
    assert unlisted == {"secret.example.yaml"}, "only the Secret template stays out of kustomize"


def test_k8s_selectors_ports_and_references_agree(yaml: Any) -> None:
    objects = k8s_objects(yaml)
    workloads = {kind_name: obj for kind in ("StatefulSet", "Deployment", "Job")
                 for kind_name, obj in by_kind(objects, kind).items()}  # fmt: skip
    configmaps = by_kind(objects, "ConfigMap")
    secrets = by_kind(objects, "Secret")
    pod_labels = [obj["spec"]["template"]["metadata"]["labels"] for obj in workloads.values()]
    for name, obj in workloads.items():
        selector = obj["spec"].get("selector", {}).get("matchLabels")
        if obj["kind"] != "Job":
            assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items(), name
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        volumes = {volume["name"] for volume in spec.get("volumes", [])}
        volumes |= {claim["metadata"]["name"] for claim in obj["spec"].get("volumeClaimTemplates", [])}
        for container in spec["containers"]:
            assert container["image"] == "payee-stream", name  # the tag comes from kustomization.yaml
            assert container["resources"]["requests"]["memory"], name
            ports = {port["name"] for port in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in ports, f"{name} {probe}"
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, name
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, name
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{name}: {mount['name']}"
    for name, service in by_kind(objects, "Service").items():
        selector = service["spec"]["selector"]
        matching = [
            obj for obj in workloads.values() if selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matching, f"Service {name} selects no pods"
        container_ports = {
            port["name"]: port["containerPort"]
            for obj in matching
            for container in pod_spec(obj)["containers"]
            for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert container_ports[port["targetPort"]] == port["port"], name
        annotations = service["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in container_ports.values()
        assert name in {WORKER_JOB, SINK_JOB}, "Service names become job labels (ServiceMonitor)"
    for name, pdb in by_kind(objects, "PodDisruptionBudget").items():
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), name
    for name, monitor in by_kind(objects, "ServiceMonitor").items():
        service = by_kind(objects, "Service")[name]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        service_ports = {port["name"] for port in service["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= service_ports


def test_k8s_workers_fit_the_partitions_and_the_index(yaml: Any) -> None:
    objects = k8s_objects(yaml)
    config = by_kind(objects, "ConfigMap")["payee-stream-config"]["data"]
    known_env = setting_env_names()
    assert set(config) <= known_env, f"unknown settings {sorted(set(config) - known_env)}"
    assert set(by_kind(objects, "Secret")["payee-stream-secrets"]["stringData"]) <= known_env
    partitions = int(config["PAYEE_STREAM_PARTITIONS"])
    assert config["PAYEE_STREAM_REPLICATION_FACTOR"] == "3"
    assert config["PAYEE_STREAM_WEB_HOST"] == "0.0.0.0"

    worker = by_kind(objects, "StatefulSet")["payee-stream-worker"]
    assert worker["spec"]["replicas"] <= partitions
    container = pod_spec(worker)["containers"][0]
    assert container["args"] == ["worker"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "index load needs time"
    memory = container["resources"]["requests"]["memory"]
    assert memory.endswith("Mi") and int(memory[:-2]) >= 1536
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts[config["PAYEE_STREAM_DATA_DIR"]] == "data"
    assert worker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"

    hpa = by_kind(objects, "HorizontalPodAutoscaler")["payee-stream-worker"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "StatefulSet", "payee-stream-worker")
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] in known_metric_names()

    sink = by_kind(objects, "Deployment")["payee-stream-sink"]
    assert pod_spec(sink)["containers"][0]["args"] == ["sink"]
    migrate = by_kind(objects, "Job")["payee-stream-migrate"]
    assert pod_spec(migrate)["containers"][0]["args"] == ["db", "migrate"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
@pytest.mark.parametrize("directory", [".", "autoscaling", "prometheus-operator"])
def test_kubectl_kustomize_builds(directory: str) -> None:
    result = run(["kubectl", "kustomize", str(K8S / directory)])
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_every_package_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, flags=re.MULTILINE)
    assert "pip install ." in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["payee-stream"]' in text
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in find["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, flags=re.MULTILINE))
    assert packages <= copied, f"packages not copied into the image: {sorted(packages - copied)}"


def test_dockerfile_ships_the_sql_migrations() -> None:
    """`db migrate` reads streams.db.MIGRATIONS_DIR; outside a package the wheel lacks it, so the
    image must put it at the same place relative to the installed packages."""
    from streams.db import MIGRATIONS_DIR

    text = DOCKERFILE.read_text(encoding="utf-8")
    relative = MIGRATIONS_DIR.relative_to(ROOT)
    if relative.parts[0] in {"streams", "agents", "schemas", "domain"}:
        return  # package data: `pip install .` installs it
    assert relative == Path("migrations"), "streams.db looks for migrations somewhere new: update the Dockerfile"
    assert re.search(r"^COPY migrations \./migrations$", text, flags=re.MULTILINE)
    assert 'cp -r migrations "$(python -c' in text and 'purelib' in text
