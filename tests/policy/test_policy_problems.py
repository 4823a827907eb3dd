"""Every kind of mistake gives a problem at the exact key path, and all are reported at once."""

from __future__ import annotations

import pytest

from gigawatt.errors import PolicyError, Problem
from gigawatt.policy import parse_policy

GATEWAY = """
[gateway]
timezone = "UTC"
"""
UPSTREAMS = """
[[upstreams]]
name = "sim"
protocol = "sim"
models = ["small", "large"]

[[upstreams]]
name = "vllm"
protocol = "openai"
url = "http://127.0.0.1:8000/v1"
models = ["large"]
"""
MODELS = """
[models.small]
credits = { input = 1, output = 5 }

[models.large]
credits = { input = 15, output = 75 }
"""
PLANS = """
[plans.pro]
priority = 1
windows = [
    { kind = "session", length = "5h", limit = 1_000 },
    { kind = "weekly", limit = 10_000 },
]
"""


def policy(
    *,
    gateway: str = GATEWAY,
    upstreams: str = UPSTREAMS,
    models: str = MODELS,
    plans: str = PLANS,
) -> str:
    return gateway + upstreams + models + plans


def problems(text: str) -> list[Problem]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "test.toml")
    assert info.value.source == "test.toml"
    return list(info.value.problems)


def with_plan(body: str) -> str:
    return policy(plans="[plans.pro]\n" + body)


def with_window(window: str, *others: str) -> str:
    listed = ",\n    ".join((window, *others))
    return with_plan(f"windows = [\n    {listed},\n]")


def test_the_base_policy_is_valid() -> None:
    policy_ = parse_policy(policy())
    assert set(policy_.plans) == {"pro"}


CASES = [
    # -- TOML types and unknown keys --------------------------------------------------------
    pytest.param(
        "plan = {}\n" + policy(),
        "plan",
        "unknown key 'plan'; did you mean 'plans'?",
        id="unknown-top-level-key",
    ),
    pytest.param(
        policy(gateway='[gateway]\nlisten_on = "0.0.0.0:80"'),
        "gateway.listen_on",
        "unknown key 'listen_on'; did you mean 'listen'?",
        id="unknown-gateway-key",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('name = "vllm"', 'name = "vllm"\nmodles = []')),
        "upstreams[1].modles",
        "unknown key 'modles'; did you mean 'models'?",
        id="unknown-upstream-key",
    ),
    pytest.param(
        policy(models=MODELS + "\n[models.medium]\ncredit = { input = 1, output = 1 }"),
        "models.medium.credit",
        "did you mean 'credits'?",
        id="unknown-model-key",
    ),
    pytest.param(
        policy(models=MODELS.replace("input = 1,", "inptu = 1, input = 1,")),
        "models.small.credits.inptu",
        "did you mean 'input'?",
        id="unknown-credit-key",
    ),
    pytest.param(
        with_plan("windos = []"),
        "plans.pro.windos",
        "unknown key 'windos'; did you mean 'windows'?",
        id="unknown-plan-key",
    ),
    pytest.param(
        with_window('{ kind = "session", length = "5h", limt = 1_000 }'),
        "plans.pro.windows[0].limt",
        "unknown key 'limt'; did you mean 'limit'?",
        id="unknown-window-key",
    ),
    pytest.param(
        with_plan('peak = { hours = "05:00-11:00", factr = 0.5 }'),
        "plans.pro.peak.factr",
        "did you mean 'factor'?",
        id="unknown-peak-key",
    ),
    pytest.param(
        with_plan("degrade = { above_load = 0.9, max_token = 10 }"),
        "plans.pro.degrade.max_token",
        "did you mean 'max_tokens'?",
        id="unknown-degrade-key",
    ),
    pytest.param(
        with_plan("rate = { rpms = 10 }"),
        "plans.pro.rate.rpms",
        "did you mean 'rpm'?",
        id="unknown-rate-key",
    ),
    pytest.param(
        policy(gateway="[gateway]\nplans = {}"),
        "gateway.plans",
        "top-level keys go before the first [table] header",
        id="top-level-key-inside-a-table",
    ),
    pytest.param(
        with_plan("zzz = 1"),
        "plans.pro.zzz",
        "unknown key 'zzz'",
        id="unknown-key-without-a-close-match",
    ),
    # -- [gateway] --------------------------------------------------------------------------
    pytest.param(
        policy(gateway='[gateway]\ntimezone = "Mars/Olympus_Mons"'),
        "gateway.timezone",
        "unknown time zone 'Mars/Olympus_Mons'",
        id="unknown-timezone",
    ),
    pytest.param(
        policy(gateway='[gateway]\nlisten = "localhost"'),
        "gateway.listen",
        "expected host:port",
        id="listen-without-port",
    ),
    pytest.param(
        policy(gateway='[gateway]\nlisten = "localhost:99999"'),
        "gateway.listen",
        "expected host:port",
        id="listen-port-out-of-range",
    ),
    pytest.param(
        policy(gateway='[gateway]\nstate = "postgres://db/limits"'),
        "gateway.state",
        "memory://, sqlite:///, redis:// or redis+cluster://",
        id="unknown-state-scheme",
    ),
    pytest.param(
        policy(gateway='[gateway]\non_state_error = "opn"'),
        "gateway.on_state_error",
        "did you mean 'open'?",
        id="bad-choice",
    ),
    pytest.param(
        policy(gateway='[gateway]\nstate_timeout = "soon"'),
        "gateway.state_timeout",
        "invalid duration 'soon'",
        id="bad-duration",
    ),
    pytest.param(
        policy(gateway="[gateway]\nstate_timeout = 2"),
        "gateway.state_timeout",
        "expected a duration string",
        id="duration-as-number",
    ),
    pytest.param(
        policy(gateway="[gateway]\nmax_body_bytes = true"),
        "gateway.max_body_bytes",
        "expected an integer, got boolean true",
        id="bool-is-not-an-int",
    ),
    pytest.param(
        policy(gateway="[gateway]\nmax_body_bytes = 0"),
        "gateway.max_body_bytes",
        "must be greater than 0",
        id="zero-body-limit",
    ),
    pytest.param(
        policy(gateway="gateway = 5\n"),
        "gateway",
        "expected a table, got integer 5",
        id="gateway-not-a-table",
    ),
    # -- [[upstreams]] ----------------------------------------------------------------------
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('models = ["large"]', 'models = ["larg"]')),
        "upstreams[1].models[0]",
        "unknown model 'larg'; did you mean 'large'?",
        id="upstream-unknown-model",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('protocol = "openai"', 'protocol = "grpc"')),
        "upstreams[1].protocol",
        "expected one of 'openai', 'anthropic', 'sim'",
        id="unknown-protocol",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('url = "http://127.0.0.1:8000/v1"\n', "")),
        "upstreams[1].url",
        "a openai upstream needs a url",
        id="missing-url",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace("http://127.0.0.1", "ftp://127.0.0.1")),
        "upstreams[1].url",
        "http:// or https://",
        id="bad-url",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace("http://127.0.0.1:8000", "http://:8000")),
        "upstreams[1].url",
        "URL with a host",
        id="url-without-host",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace("127.0.0.1:8000", "127.0.0.1:port")),
        "upstreams[1].url",
        "URL with a host",
        id="url-with-bad-port",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('name = "vllm"', 'name = "sim"')),
        "upstreams[1].name",
        "duplicate upstream name 'sim'",
        id="duplicate-upstream",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('name = "vllm"\n', "")),
        "upstreams[1].name",
        "missing (required)",
        id="missing-upstream-name",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('name = "vllm"', 'name = "vllm"\nmax_inflight = 0')),
        "upstreams[1].max_inflight",
        "must be greater than 0",
        id="zero-inflight",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('name = "vllm"', 'name = "vllm"\nforward_priority = 1')),
        "upstreams[1].forward_priority",
        "expected true or false, got integer 1",
        id="bool-field-given-int",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('models = ["large"]', "models = []")),
        "upstreams[1].models",
        "expected at least one model name",
        id="upstream-without-models",
    ),
    pytest.param(
        policy(upstreams=UPSTREAMS.replace('models = ["large"]', 'models = ["large", "large"]')),
        "upstreams[1].models[1]",
        "listed twice",
        id="upstream-model-twice",
    ),
    pytest.param(
        'upstreams = { name = "x" }\n' + policy(upstreams=""),
        "upstreams",
        "expected an array of tables",
        id="upstreams-not-an-array",
    ),
    # -- [models.NAME] ----------------------------------------------------------------------
    pytest.param(
        policy(models=MODELS.replace("input = 1,", "input = 0,")),
        "models.small.credits.input",
        "must be greater than 0, got 0",
        id="zero-input-credits",
    ),
    pytest.param(
        policy(models=MODELS.replace("input = 1, output = 5", "input = 1")),
        "models.small.credits.output",
        "missing (required)",
        id="missing-output-credits",
    ),
    pytest.param(
        policy(models=MODELS.replace("output = 5", "output = 5, cache_read = -1")),
        "models.small.credits.cache_read",
        "must be at least 0",
        id="negative-cache-credits",
    ),
    pytest.param(
        policy(models=MODELS.replace("output = 5", 'output = "5"')),
        "models.small.credits.output",
        "expected a number, got string '5'",
        id="number-as-string",
    ),
    pytest.param(
        policy(models=MODELS.replace("output = 5", "output = nan")),
        "models.small.credits.output",
        "expected a number",
        id="nan",
    ),
    pytest.param(
        policy(models=MODELS + '\n[models.medium]\nnote = "x"\n'),
        "models.medium.credits",
        "missing (required)",
        id="missing-credits",
    ),
    # -- [plans.NAME] -----------------------------------------------------------------------
    pytest.param(
        with_plan("priority = 1.5"),
        "plans.pro.priority",
        "expected an integer, got float 1.5",
        id="float-priority",
    ),
    pytest.param(
        with_plan("priority = true"),
        "plans.pro.priority",
        "expected an integer, got boolean true",
        id="bool-priority",
    ),
    pytest.param(
        with_plan('models = ["small", "medium"]'),
        "plans.pro.models[1]",
        "unknown model 'medium'",
        id="plan-unknown-model",
    ),
    pytest.param(
        with_plan("rate = { rpm = -5 }"),
        "plans.pro.rate.rpm",
        "must be greater than 0, got -5",
        id="negative-rpm",
    ),
    pytest.param(
        with_plan("rate = { input_tpm = true }"),
        "plans.pro.rate.input_tpm",
        "expected an integer, got boolean true",
        id="bool-tpm",
    ),
    pytest.param(
        with_plan("model_rates = { larg = { rpm = 5 } }"),
        "plans.pro.model_rates.larg",
        "unknown model 'larg'; did you mean 'large'?",
        id="model-rates-unknown-model",
    ),
    pytest.param(
        with_plan('models = ["small"]\nmodel_rates = { large = { rpm = 5 } }'),
        "plans.pro.model_rates.large",
        "model 'large' is not one of this plan's models",
        id="model-rates-model-not-in-plan",
    ),
    pytest.param(
        with_plan("model_rates = { large = { output_tpm = 0 } }"),
        "plans.pro.model_rates.large.output_tpm",
        "must be greater than 0",
        id="model-rates-zero",
    ),
    pytest.param(
        with_plan('queue_timeout = "-1s"'),
        "plans.pro.queue_timeout",
        "invalid duration",
        id="negative-queue-timeout",
    ),
    pytest.param(
        with_plan("output_estimate = 0"),
        "plans.pro.output_estimate",
        "must be greater than 0",
        id="zero-output-estimate",
    ),
    # -- windows ----------------------------------------------------------------------------
    pytest.param(
        with_window('{ kind = "session", length = "5h", limit = 0 }'),
        "plans.pro.windows[0].limit",
        "must be greater than 0, got 0",
        id="zero-limit",
    ),
    pytest.param(
        with_window(
            '{ kind = "weekly", limit = 1 }', '{ kind = "session", length = "5h", limit = -3 }'
        ),
        "plans.pro.windows[1].limit",
        "must be greater than 0, got -3",
        id="negative-limit",
    ),
    pytest.param(
        with_window('{ kind = "session", length = "5h", limit = true }'),
        "plans.pro.windows[0].limit",
        "expected a number, got boolean true",
        id="bool-limit",
    ),
    pytest.param(
        with_window('{ kind = "monthly", limit = 5 }'),
        "plans.pro.windows[0].kind",
        "expected one of 'session', 'rolling', 'weekly'",
        id="unknown-kind",
    ),
    pytest.param(
        with_window('{ kind = "rolling", limit = 5 }'),
        "plans.pro.windows[0].length",
        "missing (required)",
        id="rolling-without-length",
    ),
    pytest.param(
        with_window('{ kind = "session", length = "0h", limit = 5 }'),
        "plans.pro.windows[0].length",
        "must be longer than zero",
        id="zero-length",
    ),
    pytest.param(
        with_window('{ kind = "weekly", length = "5d", limit = 5 }'),
        "plans.pro.windows[0].length",
        "a weekly window is always 7d; got 5d",
        id="weekly-with-other-length",
    ),
    pytest.param(
        with_window(
            '{ kind = "weekly", limit = 9 }', '{ kind = "session", length = "8d", limit = 5 }'
        ),
        "plans.pro.windows[1].length",
        "session window of 8d is longer than the weekly cap 'weekly' it sits under",
        id="window-longer-than-weekly",
    ),
    pytest.param(
        with_window(
            '{ kind = "weekly", limit = 9, models = ["large"] }',
            '{ kind = "rolling", length = "10d", limit = 5, models = ["large"] }',
        ),
        "plans.pro.windows[1].length",
        "rolling window of 10d is longer than the weekly cap 'weekly-large' it sits under",
        id="window-longer-than-per-model-weekly",
    ),
    pytest.param(
        with_window('{ kind = "session", length = "5h", limit = 5, anchor = "Mon 00:00" }'),
        "plans.pro.windows[0].anchor",
        "only weekly windows take an anchor",
        id="anchor-on-session",
    ),
    pytest.param(
        with_window('{ kind = "weekly", limit = 5, anchor = "Someday 25:00" }'),
        "plans.pro.windows[0].anchor",
        "expected a weekday and a time such as 'Mon 00:00'",
        id="bad-anchor",
    ),
    pytest.param(
        with_window('{ kind = "weekly", limit = 5 }', '{ kind = "weekly", limit = 6 }'),
        "plans.pro.windows[1].name",
        "duplicate window name 'weekly'",
        id="duplicate-window-name",
    ),
    pytest.param(
        with_window('{ kind = "session", length = "5h", limit = 5, models = ["tiny"] }'),
        "plans.pro.windows[0].models[0]",
        "unknown model 'tiny'",
        id="window-unknown-model",
    ),
    pytest.param(
        with_plan(
            'models = ["small"]\nwindows = [{ kind = "weekly", limit = 5, models = ["large"] }]'
        ),
        "plans.pro.windows[0].models[0]",
        "model 'large' is not one of this plan's models",
        id="window-model-not-in-plan",
    ),
    pytest.param(
        with_window('{ kind = "weekly", limit = 5, models = [] }'),
        "plans.pro.windows[0].models",
        "expected at least one model name",
        id="window-empty-models",
    ),
    pytest.param(
        with_plan('windows = ["5h"]'),
        "plans.pro.windows[0]",
        "expected a table, got string '5h'",
        id="window-not-a-table",
    ),
    # -- peak -------------------------------------------------------------------------------
    pytest.param(
        with_plan('peak = { hours = "05:00-11:00", factor = 0 }'),
        "plans.pro.peak.factor",
        "must be greater than 0, got 0",
        id="zero-peak-factor",
    ),
    pytest.param(
        with_plan('peak = { hours = "05:00-11:00", factor = -0.5 }'),
        "plans.pro.peak.factor",
        "must be greater than 0",
        id="negative-peak-factor",
    ),
    pytest.param(
        with_plan('peak = { hours = "05:00-11:00" }'),
        "plans.pro.peak.factor",
        "missing (required)",
        id="missing-peak-factor",
    ),
    pytest.param(
        with_plan('peak = { hours = "5am-11am", factor = 0.5 }'),
        "plans.pro.peak.hours",
        "expected a local time span such as '05:00-11:00'",
        id="bad-peak-hours",
    ),
    pytest.param(
        with_plan('peak = { hours = "05:00-05:00", factor = 0.5 }'),
        "plans.pro.peak.hours",
        "expected a local time span",
        id="empty-peak-span",
    ),
    pytest.param(
        with_plan('peak = { hours = "05:00-11:00", days = "Mon-Fry", factor = 0.5 }'),
        "plans.pro.peak.days",
        "expected days such as 'Mon-Fri'",
        id="bad-peak-days",
    ),
    pytest.param(
        with_plan('peak = { hours = "05:00-11:00", timezone = "Pacific", factor = 0.5 }'),
        "plans.pro.peak.timezone",
        "unknown time zone 'Pacific'",
        id="bad-peak-timezone",
    ),
    # -- degrade ----------------------------------------------------------------------------
    pytest.param(
        with_plan('degrade = { above_load = 0.9, fallback_model = "medium" }'),
        "plans.pro.degrade.fallback_model",
        "unknown model 'medium'",
        id="unknown-fallback-model",
    ),
    pytest.param(
        with_plan('models = ["large"]\ndegrade = { above_load = 0.9, fallback_model = "small" }'),
        "plans.pro.degrade.fallback_model",
        "not one of this plan's models",
        id="fallback-model-not-in-plan",
    ),
    pytest.param(
        with_plan("degrade = { above_load = 1.5, max_tokens = 100 }"),
        "plans.pro.degrade.above_load",
        "expected a share of capacity in (0, 1], got 1.5",
        id="above-load-over-one",
    ),
    pytest.param(
        with_plan("degrade = { above_load = 0, max_tokens = 100 }"),
        "plans.pro.degrade.above_load",
        "must be greater than 0",
        id="above-load-zero",
    ),
    pytest.param(
        with_plan("degrade = { above_load = 0.5 }"),
        "plans.pro.degrade",
        "degrade gives nothing up",
        id="degrade-nothing",
    ),
    pytest.param(
        with_plan("degrade = { above_load = 0.5, max_tokens = 0 }"),
        "plans.pro.degrade.max_tokens",
        "must be greater than 0",
        id="degrade-zero-max-tokens",
    ),
    # -- the file as a whole ----------------------------------------------------------------
    pytest.param(
        policy(models="", upstreams=""),
        "models",
        "missing: add at least one [models.NAME] table",
        id="no-models",
    ),
    pytest.param(
        policy(plans=""),
        "plans",
        "missing: add at least one [plans.NAME] table",
        id="no-plans",
    ),
    pytest.param(
        policy(plans='[plans."my plan"]\npriority = "high"'),
        'plans."my plan".priority',
        "expected an integer, got string 'high'",
        id="quoted-plan-name",
    ),
]


@pytest.mark.parametrize(("text", "path", "reason"), CASES)
def test_problem_at_exact_path(text: str, path: str, reason: str) -> None:
    found = problems(text)
    at_path = [p for p in found if p.path == path]
    assert at_path, f"no problem at {path!r}; got {[str(p) for p in found]}"
    assert any(reason in p.reason for p in at_path), [str(p) for p in at_path]


def test_misspelt_key_reports_the_unknown_key_and_the_missing_one() -> None:
    found = problems(with_window('{ kind = "session", length = "5h", limt = 1_000 }'))
    assert [str(p) for p in found] == [
        "plans.pro.windows[0].limt: unknown key 'limt'; did you mean 'limit'?",
        "plans.pro.windows[0].limit: missing (required)",
    ]


def test_every_problem_is_reported_at_once() -> None:
    text = policy(
        gateway='[gateway]\ntimezone = "Nowhere/City"\nmax_body_bytes = true',
        upstreams=UPSTREAMS.replace('models = ["large"]', 'models = ["huge"]'),
        plans="""
[plans.pro]
priority = 1.5
windows = [
    { kind = "session", length = "5h", limit = -1 },
    { kind = "weekly", limt = 10 },
]
peak = { hours = "05:00-11:00", factor = 0 }
""",
    )
    paths = [p.path for p in problems(text)]
    assert paths == [
        "gateway.timezone",
        "gateway.max_body_bytes",
        "upstreams[1].models[0]",
        "plans.pro.priority",
        "plans.pro.windows[0].limit",
        "plans.pro.windows[1].limt",
        "plans.pro.windows[1].limit",
        "plans.pro.peak.factor",
    ]


def test_policy_error_message_names_the_file_and_each_problem() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(with_plan("priority = true\noutput_estimate = -1"), "plans.toml")
    message = str(info.value)
    assert message.startswith("2 problem(s) in plans.toml:")
    assert "plans.toml: plans.pro.priority: expected an integer" in message
    assert "plans.toml: plans.pro.output_estimate: must be greater than 0" in message


def test_malformed_toml_is_one_problem_with_line_and_column() -> None:
    found = problems('[gateway]\nlisten = "127.0.0.1:8080"\ntimezone = \n')
    assert len(found) == 1
    assert found[0].path == ""
    assert found[0].reason.startswith("not valid TOML:")
    assert "line 3, column" in found[0].reason


def test_bad_model_definitions_do_not_also_make_references_unknown() -> None:
    # `large` has bad credits; the upstream and the plan naming it must not add "unknown model".
    found = problems(policy(models=MODELS.replace("input = 15", "input = -15")))
    assert [p.path for p in found] == ["models.large.credits.input"]


def test_peak_factor_above_one_is_allowed() -> None:
    text = with_plan('peak = { hours = "22:00-06:00", days = "weekends", factor = 2 }')
    peak = parse_policy(text).plans["pro"].peak
    assert peak is not None and peak.factor == 2.0


def test_weekly_length_of_seven_days_is_allowed() -> None:
    text = with_window('{ kind = "weekly", length = "7d", limit = 5 }')
    (window,) = parse_policy(text).plans["pro"].windows
    assert window.length_s == 7 * 86_400


def test_window_under_a_per_model_weekly_of_other_models_is_not_compared() -> None:
    # The weekly cap counts only `large`; a 10-day window over every model does not sit under it.
    text = with_window(
        '{ kind = "weekly", limit = 9, models = ["large"] }',
        '{ kind = "rolling", length = "10d", limit = 5 }',
    )
    assert len(parse_policy(text).plans["pro"].windows) == 2


@pytest.mark.parametrize("name", ["big model", "a,b", "x;y", "p|q", "k=v"])
def test_names_that_would_break_stored_state_are_rejected(name: str) -> None:
    text = f"""
[models."{name}"]
credits = {{ input = 1, output = 5 }}

[plans.pro]
"""
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert any("may not contain" in p.reason for p in info.value.problems)
