"""Where notifications go: Alertmanager's v2 API or a generic webhook (via httpx)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from hpcbridge.errors import HpcbridgeError
from hpcbridge.slo._alerts import Alert, fingerprint


class NotifyError(HpcbridgeError):
    """A notification could not be delivered; the notifier retries on its next call."""


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """Alerts sent together; ``labels`` are the values of the grouping labels."""

    labels: Mapping[str, str]
    alerts: tuple[Alert, ...]

    @property
    def key(self) -> str:
        return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items())) + "}"


class Sink(Protocol):
    def send(self, groups: Sequence[AlertGroup]) -> None:
        """Deliver every group or raise ``NotifyError``."""


def rfc3339(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def alertmanager_alert(alert: Alert, generator_url: str = "") -> dict[str, Any]:
    """One alert in Alertmanager's v2 ``postableAlert`` shape; job ids go in an annotation."""
    annotations = dict(alert.annotations)
    if alert.job_ids:
        annotations["job_ids"] = ", ".join(alert.job_ids)
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": annotations,
        "startsAt": rfc3339(alert.starts_at),
    }
    if alert.ends_at is not None:
        body["endsAt"] = rfc3339(alert.ends_at)
    if generator_url:
        body["generatorURL"] = generator_url
    return body


def _post(
    client: httpx.Client | None,
    url: str,
    payload: Any,
    timeout_s: float,
    headers: Mapping[str, str],
) -> None:
    try:
        if client is None:
            with httpx.Client(timeout=timeout_s) as own:
                response = own.post(url, json=payload, headers=dict(headers))
        else:
            response = client.post(url, json=payload, headers=dict(headers), timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise NotifyError(f"POST {url} failed: {exc}", hint="is the receiver up?") from exc
    if response.status_code >= 300:
        raise NotifyError(
            f"POST {url} answered {response.status_code}: {response.text[:200]}",
            hint="check the receiver's URL and logs",
        )


class AlertmanagerSink:
    """Posts all alerts to ``<url>/api/v2/alerts`` in one call; Alertmanager groups them."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
        generator_url: str = "",
    ) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self._client = client
        self._timeout_s = timeout_s
        self._generator_url = generator_url

    def send(self, groups: Sequence[AlertGroup]) -> None:
        payload = [alertmanager_alert(a, self._generator_url) for g in groups for a in g.alerts]
        if payload:
            _post(self._client, self.url, payload, self._timeout_s, {})


class WebhookSink:
    """One POST per group, in Alertmanager's webhook format (version 4) plus ``jobIds``."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
        receiver: str = "hpcbridge",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self._client = client
        self._timeout_s = timeout_s
        self._receiver = receiver
        self._headers = dict(headers or {})

    def send(self, groups: Sequence[AlertGroup]) -> None:
        for group in groups:
            if group.alerts:
                _post(
                    self._client,
                    self.url,
                    webhook_payload(group, self._receiver),
                    self._timeout_s,
                    self._headers,
                )


def webhook_payload(group: AlertGroup, receiver: str = "hpcbridge") -> dict[str, Any]:
    alerts = [
        {
            "status": a.status,
            **alertmanager_alert(a),
            "endsAt": rfc3339(a.ends_at) if a.ends_at is not None else "0001-01-01T00:00:00Z",
            "fingerprint": fingerprint(a.labels),
            "jobIds": list(a.job_ids),
        }
        for a in group.alerts
    ]
    firing = any(a.status == "firing" for a in group.alerts)
    return {
        "version": "4",
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "groupKey": group.key,
        "groupLabels": dict(group.labels),
        "commonLabels": _common([a.labels for a in group.alerts]),
        "commonAnnotations": _common([a.annotations for a in group.alerts]),
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}
