"""What vulture cannot see used, each with why (`make lint` runs vulture on
app/lmbridge with this file; `[tool.vulture]` in pyproject.toml).

Vulture reads names, not types: an entry here keeps every attribute of that
name. Add an entry only with a reason; code that nothing uses is deleted,
not listed. Not imported by anything: vulture only reads it.
"""

# ruff: noqa
# mypy: ignore-errors

# --- Qt calls these overrides; no Python code does.
_.clone  # QIconEngine.clone (gui/icons.py)
_.closeEvent  # QWidget.closeEvent: the window's close policy (gui/window.py)
_.columnCount  # QAbstractTableModel (gui/tablemodel.py)
_.headerData  # QAbstractTableModel (gui/tablemodel.py)
_.paintEvent  # QWidget.paintEvent: the Usage charts (gui/usage/charts.py)
_.isComplete  # QWizardPage.isComplete: Next stays off until a page is done
_.validatePage  # QWizard.validatePage: the wizard's save step
_.eventFilter  # QObject.eventFilter: the wheel scrolls the Settings page (gui/settings/generated.py)

# --- Other libraries read these.
_._timer_handle_cancelled  # asyncio.TimerHandle.cancel calls its loop's (gui/loop.py)
_._current_handle  # asyncio's debug mode reads the loop's (gui/loop.py)
_.preserve_quotes  # ruamel.yaml's YAML() option (integrations/continue_dev.py)
_.levelname  # logging.LogRecord fields a filter rewrites (server/clients.py)
_.levelno  # logging.LogRecord (server/clients.py)
_.exc_type  # __aexit__'s parameters (lmstudio/catalog.py)
_.tb  # __aexit__'s parameters (lmstudio/catalog.py)

# --- Wire fields: msgspec decodes them from a client's or a server's JSON
# (a field that is declared is accepted, and forbid_unknown_fields or a
# type check needs it), or encodes them into our answers.
_.error_code  # Anthropic web_search_tool_result_error, encoded in our answers
_.server_tool_use  # Anthropic usage.server_tool_use (searches run), encoded
_.thought_signature  # Gemini part field, accepted from a client's history
_.annotations  # Responses output_text.annotations, encoded in our answers
_.cache_write_tokens  # Responses usage detail some servers send
_.client_metadata  # Responses request field, accepted and not kept
_.completed_at  # Responses object, encoded in our answers
_.file_data  # Responses input_file, accepted to refuse it by name
_.file_url  # Responses input_file, accepted to refuse it by name
_.filename  # Responses input_file, accepted to refuse it by name
_.generate_summary  # Responses reasoning (deprecated name), accepted
_.include  # Responses request field, accepted and not kept
_.logprobs  # Chat and Responses stream fields, encoded in our answers
_.max_completion_tokens  # Chat request field (read into max_tokens)
_.predicted_tokens  # the chat service's answer (protocols/chat_api.py)
_.service_tier  # Responses request field, accepted and not kept
_.stream_options  # Chat request field (include_usage, read from extras)
_.top_logprobs  # Chat request field, checked by msgspec, read into extras by name
_.total_tokens  # Responses usage, encoded in our answers
_.truncation  # Responses request and object field
_.verbosity  # Responses text.verbosity, accepted
_.model_alias  # llama.cpp /props field (upstreams/llamacpp.py)
_.total_slots  # llama.cpp /props field (upstreams/llamacpp.py)
_.ttft_avg  # usage aggregate fields, filled from SQL rows by name
_.ttft_samples  # (store/usage_types.py); tests/test_usage_store.py reads
_.tps_avg  # them, and they are the aggregate's full record
_.tps_samples  # usage aggregate fields
_.removed_message  # /store API answer field (server/store_api.py)
_.secrets_moved  # SaveResult: upstreams whose URL credentials moved (tests)
_.Q4_1  # LM Studio's quantization names (lmstudio/structs.py), decoded
_.Q5_0  # LM Studio's quantization names, decoded
_.Q5_1  # LM Studio's quantization names, decoded
_.IQ4_NL  # LM Studio's quantization names, decoded
_.CATALOG  # LM Studio's download source kind, decoded
_.OTHER  # core/record.py NoteKind: older history rows' free-text notes migrate to it
_.prefix_at  # core/record.py RequestSummary field: a history column (store/record_columns.py derives columns from fields)

# --- Test hooks: the tests (and docs/screenshots) drive or read the app
# through these, the way a user would see it; the app itself has no caller.
_.condition_text  # gui/message.py: the text of a lasting condition
_.confirm_button  # gui/widgets.py ConfirmBar: the button a user clicks
_.visible_texts  # gui/widgets.py ConditionBanners: what the banners show
_.option_button  # gui/models/downloads_view.py: a download option's button
_.select_row  # gui/requests/view.py: select a request as a click would
_.set_field  # gui/settings/form.py: type into a field as a user would
_.settings_from_form  # gui/settings/view.py: the form read back
_.pick  # gui/setup/pages.py: choose a model as a click would
_.titles  # gui/tablemodel.py: column titles, for tests by key
_.series_keys  # gui/usage/charts.py: what a chart draws
_.reads  # gui/usage/manager.py: how often Usage re-read the history
_.last_reply  # gui views: the last answer a Test or Replay showed
_.tool_to_test  # gui/setup/plan.py: which tool the wizard tests first
_.failing  # core/writer.py BackgroundWriter: whether writes fail now
_.has_subscribers  # core/events.py EventBus: a subscriber left behind
_.forget_all  # core/redact.py: the scrubber reset between leak tests
_.without_credentials  # core/urls.py: a URL without user:password
_.set_address  # lmstudio/connection.py: reconnect to a moved LM Studio
_.CLAUDE_CODE_PATTERN  # protocols/overflow.py: the regex Claude Code reads
_.touches  # settings_store.py Change: whether a change touches a key
_.refused  # server/clients.py: connections refused over the limit
_.rounds  # upstreams/health.py: health rounds, read by bench/
_.unregister  # protocols/registry.py: tests take their toy codecs out
