"""The Load dialog: what LM Studio's load config offers, with sensible defaults.

Context length (up to the model's maximum; the configured load context by
default), GPU offload, flash attention, KV-cache quantization and the idle
TTL. "LM Studio's default" leaves a setting to LM Studio. Quantizing the
V cache needs flash attention in llama.cpp, so choosing a quantized cache
switches flash attention on.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.widgets import hint_label
from lmbridge.lmstudio import (
    DownloadedModel,
    GpuOffload,
    KvCacheType,
    LoadOptions,
    ModelKind,
)

GPU_CHOICES: tuple[tuple[str, GpuOffload | None], ...] = (
    ("LM Studio's default", None),
    ("Maximum (all layers on the GPU)", "max"),
    ("75 %", 0.75),
    ("50 %", 0.5),
    ("25 %", 0.25),
    ("Off (CPU only)", "off"),
)
FLASH_CHOICES: tuple[tuple[str, bool | None], ...] = (
    ("LM Studio's default", None),
    ("On (faster, less memory)", True),
    ("Off", False),
)
KV_CHOICES: tuple[tuple[str, KvCacheType | None], ...] = (
    ("LM Studio's default (F16)", None),
    ("Q8_0 — half the memory, nearly lossless", KvCacheType.Q8_0),
    ("Q4_0 — a quarter of the memory", KvCacheType.Q4_0),
    ("F16", KvCacheType.F16),
    ("F32 — twice the memory", KvCacheType.F32),
)


def combo(choices: tuple[tuple[str, object], ...]) -> QComboBox:
    box = QComboBox()
    for label, _value in choices:
        box.addItem(label)
    return box


class LoadDialog(QDialog):
    """How to load one downloaded model."""

    def __init__(
        self,
        model: DownloadedModel,
        default_context: int,
        parent: QWidget | None,
        *,
        default_ttl: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.setWindowTitle(f"Load {model.display_name}")
        maximum = max(1, model.max_context_length)
        self.context = QSpinBox()
        self.context.setRange(min(512, maximum), maximum)
        self.context.setSingleStep(1024)
        self.context.setGroupSeparatorShown(True)
        self.context.setValue(min(default_context, maximum))
        self.context.setSuffix(" tokens")
        self.ttl = QSpinBox()
        self.ttl.setRange(0, 24 * 60)
        self.ttl.setSuffix(" min")
        self.ttl.setSpecialValueText("stay loaded")
        if default_ttl:
            self.ttl.setValue(max(1, round(default_ttl / 60)))
        self.gpu = combo(GPU_CHOICES)
        self.flash = combo(FLASH_CHOICES)
        self.kv_cache = combo(KV_CHOICES)
        self.kv_cache.currentIndexChanged.connect(self._on_kv_cache)
        language = model.kind is ModelKind.LLM
        self.flash.setEnabled(language)
        self.kv_cache.setEnabled(language)
        form = QFormLayout()
        form.addRow("Context length", self.context)
        form.addRow(
            "",
            hint_label(
                f"Up to {maximum:,} tokens for this model; more context needs "
                "more memory. Claude Code needs about 20,000."
            ),
        )
        form.addRow("GPU offload", self.gpu)
        form.addRow("Flash attention", self.flash)
        form.addRow("KV cache", self.kv_cache)
        form.addRow(
            "",
            hint_label(
                "A quantized KV cache fits a longer context in the same memory "
                "(it needs flash attention)."
            ),
        )
        form.addRow("Unload when idle for", self.ttl)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Load")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _on_kv_cache(self, index: int) -> None:
        kv = KV_CHOICES[index][1]
        quantized = kv is not None and kv not in (KvCacheType.F16, KvCacheType.F32)
        if quantized and FLASH_CHOICES[self.flash.currentIndex()][1] is not True:
            self.flash.setCurrentIndex(1)

    def ttl_seconds(self) -> int | None:
        return self.ttl.value() * 60 or None

    def gpu_offload(self) -> GpuOffload | None:
        return GPU_CHOICES[self.gpu.currentIndex()][1]

    def options(self) -> LoadOptions:
        """The dialog as load options (None: LM Studio's default)."""
        kv = KV_CHOICES[self.kv_cache.currentIndex()][1]
        language = self.model.kind is ModelKind.LLM
        return LoadOptions(
            context_length=self.context.value(),
            gpu_offload=self.gpu_offload(),
            flash_attention=(
                FLASH_CHOICES[self.flash.currentIndex()][1] if language else None
            ),
            k_cache_type=kv if language else None,
            v_cache_type=kv if language else None,
            ttl_seconds=self.ttl_seconds(),
        )
