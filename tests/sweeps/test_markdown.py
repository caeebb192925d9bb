"""User-controlled text in dashboard notes renders as literal text: no link, image or HTML."""

from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from practices.checks import CheckResult
from practices.monitor import Monitor
from practices.train import EpochStats
from sweeps._markdown import literal
from sweeps.driver._staged import _write_note
from sweeps.trial._preflight import render
from sweeps.trial._report import _outcome, render_note

HOSTILE = [
    "![x](http://evil.example/a.png)",
    "<img src=http://evil.example/b.png>",
    "[click](http://evil.example)",
    "<script>alert(1)</script>",
    "http://evil.example/autolink",
    "``` fence ` and `` ticks",
    "a | pipe\nand | a new line",
]
MD = MarkdownIt("gfm-like")  # tables, strikethrough and bare-URL autolinks, as GitHub-flavoured Markdown


def _tags(html: str) -> list[str]:
    return [tag for tag in ("<a ", "<img", "<script", "<b>") if tag in html]


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_renders_verbatim_as_code(text):
    html = MD.render(literal(text))
    assert _tags(html) == []
    assert html.startswith("<p><code>") and html.rstrip().endswith("</code></p>")
    code = html.strip()[len("<p><code>"):-len("</code></p>")]
    unescaped = code.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    assert unescaped == " ".join(text.split())


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_in_a_table_cell_keeps_the_row_whole(text):
    html = MD.render("| a | b |\n|---|---|\n| " + literal(text, in_table=True) + " | end |\n")
    assert _tags(html) == []
    assert html.count("<td>") == 2 and "<td>end</td>" in html


def test_literal_of_empty_text_is_empty():
    assert literal("") == "" and literal(" \n ") == ""


def test_report_note_keeps_a_hostile_failure_reason_literal():
    monitor = Monitor(checkpoints="none")
    monitor.sampled_losses = [2.3]
    monitor.on_epoch_end(EpochStats(1, 0.3, 0.31, 0.9, 0.1))
    trial = SimpleNamespace(user_attrs={"fail_reason": "ValueError: ![x](http://evil.example/a.png) <img src=y>"})
    outcome = _outcome(trial, monitor, ValueError("boom"))
    note = render_note(0, monitor, [], outcome, {"seed": 1}, [("best_checkpoint.pt", "/artifacts/1/1/abc")])
    html = MD.render(note)
    assert "<img" not in html and "http://evil.example/a.png" in html
    assert html.count("<a ") == 1 and '<a href="/artifacts/1/1/abc">' in html  # only our own artifact link


def test_stage_comparison_note_keeps_hostile_values_literal():
    from optuna_dashboard import get_note

    study = optuna.create_study()
    table = pd.DataFrame({"stage": ["[s](http://evil.example)"], "model": ["<img src=http://evil.example/d.png>"]})
    _write_note(study, table, "![w](http://evil.example/w.png)")
    html = MD.render(get_note(study))
    assert _tags(html) == [] and "evil.example/d.png" in html


def test_preflight_table_keeps_hostile_where_and_advice_literal():
    result = CheckResult(name="gradient_check", passed=False, value=1.0, threshold=1e-4,
                         where="layer <img src=http://evil.example/c.png>|x",
                         advice="see [docs](http://evil.example)")
    html = MD.render(render([result]))
    assert _tags(html) == []
    assert html.count("<td>") == 5


def test_plot_failure_reason_in_the_report_note_stays_literal(monkeypatch):
    from omegaconf import OmegaConf

    import sweeps.trial._report as report

    saved = []
    monkeypatch.setattr(report, "save_note", lambda trial, note: saved.append(note))
    cfg = OmegaConf.create({"sweep": {"storage": "sqlite:///s.db"}})
    # A plotting error can quote user text (a layer name) over several lines, blank ones included.
    on_failure = report._on_render_failure(SimpleNamespace(number=0), "## Training report, trial 0\n", cfg)
    on_failure("ValueError: bad layer `x`\n\n![x](http://evil.example/a.png) <img src=http://evil.example/b.png>")
    html = MD.render(saved[-1])
    assert _tags(html) == [] and "evil.example/a.png" in html

