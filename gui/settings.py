"""One place for the app's persistent settings (QSettings, INI format)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANISATION = "BackpropStudio"
APPLICATION = "backprop-studio"


def app_settings() -> QSettings:
    """The user's settings; tests redirect the folder with ``QSettings.setPath``."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def read(key: str, default, type_=None):
    """A stored value converted to ``type_`` (default: the default's type), or the default."""
    settings = app_settings()
    type_ = type_ or type(default)
    value = settings.value(key, default)
    try:
        return type_(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def write(key: str, value) -> None:
    app_settings().setValue(key, value)
