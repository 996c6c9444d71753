"""What ``hpcbridge serve`` can be told besides ``Settings``, read once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hpcbridge.errors import ConfigError

ENV_ALERTMANAGER_URL = "HPCBRIDGE_ALERTMANAGER_URL"
ENV_SLO_FILE = "HPCBRIDGE_SLO_FILE"
ENV_RECONCILE = "HPCBRIDGE_SERVE_RECONCILE"
ENV_REPEAT_INTERVAL = "HPCBRIDGE_ALERT_REPEAT_INTERVAL_S"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    reconcile: bool = True
    """Run the reconciler loop in this process (it waits while another process leads)."""
    alertmanager_url: str | None = None
    """Run the built-in SLO evaluator and send its alerts to this Alertmanager."""
    slo_file: Path | None = None
    """SLO definitions for the evaluator; the built-in ones by default."""
    repeat_interval_s: float = 60.0
    """Re-send a firing alert after this long (Alertmanager dedupes in between)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServeOptions:
        """Options from ``HPCBRIDGE_*`` variables (how ``hpcbridge serve`` hands them over)."""
        reconcile = environ.get(ENV_RECONCILE, "1").strip().lower()
        if reconcile not in _TRUE + _FALSE:
            raise ConfigError(f"{ENV_RECONCILE}={reconcile!r}: use 1 or 0")
        repeat = environ.get(ENV_REPEAT_INTERVAL, "60").strip()
        try:
            repeat_s = float(repeat)
        except ValueError:
            repeat_s = -1.0
        if not repeat_s > 0:
            raise ConfigError(f"{ENV_REPEAT_INTERVAL}={repeat!r}: give a positive number")
        slo_file = environ.get(ENV_SLO_FILE, "").strip()
        return cls(
            reconcile=reconcile in _TRUE,
            alertmanager_url=environ.get(ENV_ALERTMANAGER_URL, "").strip() or None,
            slo_file=Path(slo_file) if slo_file else None,
            repeat_interval_s=repeat_s,
        )

    def to_env(self) -> dict[str, str]:
        env = {
            ENV_RECONCILE: "1" if self.reconcile else "0",
            ENV_REPEAT_INTERVAL: f"{self.repeat_interval_s:g}",
        }
        if self.alertmanager_url:
            env[ENV_ALERTMANAGER_URL] = self.alertmanager_url
        if self.slo_file is not None:
            env[ENV_SLO_FILE] = str(self.slo_file)
        return env
