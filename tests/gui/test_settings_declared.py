"""The Settings page is built from the settings' declarations: a widget per
type, its label and tool tip from the doc, its range from the bounds, a
group per table; so a newly declared setting is on the page (and saved as a
change of its own key) with no edit of the page."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
)

from gui.helpers import settings_field
from lmbridge import config, config_fields
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.settings.fields import FormFields
from lmbridge.gui.settings.form import RoutesEditor, UpstreamEditor
from lmbridge.gui.settings.generated import sections_for
from lmbridge.gui.settings.view import SettingsPanel
from test_config_declared import ToySettings, ToySettingsTable


def row_label(form: QFormLayout, widget: Any) -> str:
    label = form.labelForField(widget)
    return label.text() if isinstance(label, QLabel) else ""


def test_a_new_declared_setting_is_on_the_page_without_other_edits(
    qtbot: Any,
) -> None:
    sections = sections_for(config_fields.tables(ToySettings))
    toy = sections["toy"]
    assert toy.box.title() == "Toy"
    count = next(f.widget for f in toy.fields if f.key == "count")
    assert isinstance(count, QSpinBox)
    assert (count.minimum(), count.maximum()) == (2, 9)  # the declared bounds
    assert row_label(toy.form, count) == "Toy count"
    assert count.toolTip() == "How many toys."
    colour = next(f.widget for f in toy.fields if f.key == "colour")
    assert isinstance(colour, QComboBox)
    assert [colour.itemText(i) for i in range(colour.count())] == ["red", "blue"]
    wrapped = next(f.widget for f in toy.fields if f.key == "wrapped")
    assert isinstance(wrapped, QComboBox)
    assert wrapped.itemText(0) == "ask"  # optional: the unset meaning first

    upstreams, routes = UpstreamEditor(), RoutesEditor()
    qtbot.addWidget(upstreams)
    qtbot.addWidget(routes)
    for section in sections.values():
        qtbot.addWidget(section.box)
    form = FormFields(
        [f for s in sections.values() for f in s.fields], upstreams, routes
    )
    form.fill(ToySettings(toy=ToySettingsTable(count=4)))
    assert count.value() == 4
    count.setValue(7)
    wrapped.setCurrentIndex(wrapped.findText("off"))
    assert form.changes() == {"toy": {"count": 7, "wrapped": False}}
    assert form.key_paths() == {("toy", "count"): 7, ("toy", "wrapped"): False}


async def test_every_declared_key_has_its_widget(gui_app: LMBridgeApp) -> None:
    panel = gui_app.page("settings")
    assert isinstance(panel, SettingsPanel)
    kinds = {
        "bool": (QCheckBox, QComboBox),
        "int": (QSpinBox,),
        "float": (QDoubleSpinBox, QComboBox),
        "str": (QLineEdit,),
        "list": (QLineEdit,),
        "choice": (QComboBox,),
        "mixed": (QComboBox,),
    }
    shown = 0
    for table in config_fields.tables():
        if table.is_list:
            continue
        for key in table.keys:
            if key.secret:
                assert key.name not in panel.form.by_name  # never shown
                continue
            widget = panel.form.widget(key.name)
            assert isinstance(widget, kinds[key.kind]), key.name
            assert widget.toolTip() == key.doc
            shown += 1
    assert shown >= 29
    port = settings_field(panel, "server.port", QSpinBox)
    assert (port.minimum(), port.maximum()) == (0, 65535)
    # Bytes shown in MB: the declared scale.
    image = settings_field(panel, "chat.max_image_bytes", QSpinBox)
    assert image.value() * config.MIB == config.ChatSettings().max_image_bytes
    ttl = settings_field(panel, "lmstudio.load_ttl_seconds", QSpinBox)
    assert ttl.minimum() == 0 and ttl.specialValueText() == "stay loaded"
    # The usage history's keys, never on the page before, are there now.
    days = settings_field(panel, "usage.retention_days", QSpinBox)
    assert days.minimum() == 1
    days.setValue(12)
    panel.save_button.click()
    saved = config.load(gui_app.controller.config_path)
    assert saved.usage.retention_days == 12


async def test_a_value_out_of_the_declared_bounds_is_refused_under_its_field(
    gui_app: LMBridgeApp,
) -> None:
    panel = gui_app.page("settings")
    assert isinstance(panel, SettingsPanel)
    path = gui_app.controller.config_path
    offload = settings_field(panel, "lmstudio.load_gpu_offload", QComboBox)
    assert [offload.itemText(i) for i in range(offload.count())] == ["", "max", "off"]
    offload.setCurrentText("1.5")  # a ratio is 0.0 to 1.0
    panel.save_button.click()
    error = panel.form.errors["lmstudio.load_gpu_offload"]
    assert not error.isHidden()
    assert error.text() == "Must be at most 1.0"
    assert not path.exists()  # nothing written
    offload.setCurrentText("0.5")
    panel.save_button.click()
    assert error.isHidden()
    assert config.load(path).lmstudio.load_gpu_offload == 0.5
    offload.setCurrentText("max")
    panel.save_button.click()
    assert config.load(path).lmstudio.load_gpu_offload == "max"
