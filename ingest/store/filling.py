"""Filling stations: fill authorizations and fill records — state and rules.

A gun asks before it fills (``auth``, answered at once by :mod:`ingest.auth`); the answer
joins the batch afterwards so it is recorded like any other message. A refusal raises
``fill_denied`` (and ``unknown_tag`` for a tag the registry lacks) and is counted per
station, local day and reason (``fill_denials_daily``, the dashboard's "denials today").

A fill record (``fill``) moves the cylinder to *full, at the station* and is judged by the
rules of DOMAIN.md "Abnormal behaviour": ``overfill`` (even aborted: the gas is in the
cylinder), ``underfill`` (completed only), ``repeat_fill`` (filled again with no return scan
in between, ``[filling] repeat_fill_window_h``) and ``unknown_tag``. Thresholds are the
``[filling]`` settings and the model table (docs/CONFIG.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.live import fill_event, trajectory_event
from ingest.schemas import GunAuth, GunFill, Parsed
from ingest.store.context import BatchContext, Item, PendingAlert
from server.domain.filling import FillAssessment, assess_fill, checks_failed, is_repeat_fill
from server.kernel.settings import Settings

__all__ = ["FillOutcome", "apply_auth", "apply_fill", "fill_outcome"]


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """How a fill record is judged: stored in its row and acted on by the rules alike."""

    failed_checks: tuple[str, ...]
    """Failed pre/post check items: any makes the fill ``aborted`` (DOMAIN.md "Filling checks")."""
    result: str
    """``completed`` or ``aborted``."""
    assessment: str | None
    """The net mass against the model's maximum; None for a tag the registry lacks."""

    @property
    def completed(self) -> bool:
        return self.result == "completed"


def fill_outcome(body: GunFill, spec: str | None, settings: Settings) -> FillOutcome:
    failed = checks_failed(body.pre_check, body.post_check)
    result = "aborted" if body.result == "aborted" or failed else "completed"
    assessment = (
        None
        if spec is None
        else assess_fill(spec, body.net_kg, settings.models, settings.filling).value
    )
    return FillOutcome(failed, result, assessment)


def apply_auth(item: Item, body: GunAuth, batch: BatchContext) -> None:
    """A gun's authorization request, as answered: count and alert a refusal."""
    p = item.parsed
    auth = item.auth
    assert p is not None and auth is not None
    st = auth.station
    cyl = batch.cylinders.get(body.tag) if auth.cylinder is not None else None
    station_id = st.station_id if st else None
    company_id = st.company_id if st else None
    cylinder_id = cyl["id"] if cyl else None
    reasons = list(auth.decision.reason_codes)
    if auth.decision.allowed:
        if cyl is not None:
            batch.see_cylinder(cyl, p.ts)
        batch.live_events.append(
            trajectory_event(
                ts=p.ts,
                kind="fill_authorized",
                tag=body.tag,
                device_id=p.device_id,
                cylinder_id=cylinder_id,
                site_id=station_id,
                company_id=company_id,
                district=auth.station_district,
                details={"decision": "allow", "code": auth.code},
            )
        )
        return
    if station_id is not None:
        day = batch.territory.local_day(p.ts)
        for r in reasons:
            batch.denials[(station_id, day, r)] += 1
    district = batch.territory.fk_district(auth.station_district)
    batch.alerts.append(
        PendingAlert(
            "fill_denied",
            body.tag,
            p.ts,
            company_id=company_id,
            site_id=station_id,
            district_code=district,
            cylinder_id=cylinder_id,
            details={
                "reasons": reasons,
                "code": auth.code,
                "gun_id": p.device_id,
                "station": auth.station_code,
                "msg_id": body.msg_id,
            },
        )
    )
    if "unknown_tag" in reasons:
        batch.alerts.append(
            PendingAlert(
                "unknown_tag",
                body.tag,
                p.ts,
                company_id=company_id,
                site_id=station_id,
                district_code=district,
                cylinder_id=cylinder_id,
                details={"seen_by": p.device_id, "station": auth.station_code, "via": "auth"},
            )
        )
    batch.live_events.append(
        trajectory_event(
            ts=p.ts,
            kind="fill_refused",
            tag=body.tag,
            device_id=p.device_id,
            cylinder_id=cylinder_id,
            site_id=station_id,
            company_id=company_id,
            district=auth.station_district,
            details={"reasons": reasons, "code": auth.code},
        )
    )


def apply_fill(p: Parsed, body: GunFill, batch: BatchContext) -> None:
    """A fill record: judge it, and a completed fill makes the cylinder full at the station."""
    territory = batch.territory
    settings = territory.settings
    dev = batch.devices[p.device_id]
    site_id = dev["site_id"]
    site = batch.sites_by_id.get(site_id)
    cyl = batch.cylinders.get(body.tag)
    outcome = fill_outcome(body, cyl["spec"] if cyl else None, settings)
    district = site["district_code"] if site else None
    company = site["company_id"] if site else dev["company_id"]
    scope: dict[str, Any] = {
        "company_id": company,
        "site_id": site_id,
        "district_code": territory.fk_district(district),
    }
    if cyl is None:
        batch.alerts.append(
            PendingAlert(
                "unknown_tag",
                body.tag,
                p.ts,
                details={"seen_by": p.device_id, "via": "fill", "msg_id": body.msg_id},
                **scope,
            )
        )
    else:
        details = {
            "net_kg": body.net_kg,
            "spec": cyl["spec"],
            "gun_id": p.device_id,
            "msg_id": body.msg_id,
            "result": outcome.result,
        }
        if outcome.assessment == FillAssessment.OVERFILL:
            # an aborted overfill still left too much gas in the cylinder
            batch.alerts.append(
                PendingAlert(
                    "overfill", body.tag, p.ts, cylinder_id=cyl["id"], details=details, **scope
                )
            )
        elif outcome.assessment == FillAssessment.UNDERFILL and outcome.completed:
            batch.alerts.append(
                PendingAlert(
                    "underfill", body.tag, p.ts, cylinder_id=cyl["id"], details=details, **scope
                )
            )
        if outcome.completed:
            _record_completed_fill(p, body, batch, cyl, details, scope, district)
    batch.live_events.append(
        fill_event(
            ts=p.ts,
            tag=body.tag,
            cylinder_id=cyl["id"] if cyl else None,
            gun_id=p.device_id,
            station_id=site_id,
            company_id=company,
            district=district,
            net_kg=body.net_kg,
            assessment=outcome.assessment,
            result=outcome.result,
        )
    )
    batch.live_events.append(
        trajectory_event(
            ts=p.ts,
            kind="fill",
            tag=body.tag,
            device_id=p.device_id,
            cylinder_id=cyl["id"] if cyl else None,
            site_id=site_id,
            company_id=company,
            district=district,
            details={
                "net_kg": body.net_kg,
                "assessment": outcome.assessment,
                "result": outcome.result,
            },
        )
    )


def _record_completed_fill(
    p: Parsed,
    body: GunFill,
    batch: BatchContext,
    cyl: dict[str, Any],
    details: dict[str, Any],
    scope: dict[str, Any],
    district: str | None,
) -> None:
    """Repeat-fill rule, then the cylinder is full at the station (unless newer state)."""
    site_id = scope["site_id"]
    previous = cyl["last_fill_at"]
    if is_repeat_fill(previous, cyl["last_return_at"], p.ts, batch.territory.settings.filling):
        batch.alerts.append(
            PendingAlert(
                "repeat_fill",
                body.tag,
                p.ts,
                cylinder_id=cyl["id"],
                details={
                    **details,
                    "previous_fill_at": previous.isoformat() if previous is not None else None,
                    "previous_site_id": cyl["last_fill_site_id"],
                },
                **scope,
            )
        )
    if previous is None or p.ts > previous:
        cyl["last_fill_at"] = p.ts
        cyl["last_fill_site_id"] = site_id
        batch.dirty_cylinders.add(cyl["id"])
    batch.set_state(
        cyl,
        p.ts,
        fill_state="full",
        location_kind="site",
        location_site_id=site_id,
        location_device_id=None,
        location_customer_id=None,
        district_code=batch.territory.fk_district(district) or cyl["district_code"],
    )
    batch.see_cylinder(cyl, p.ts)
    if site_id is not None:
        batch.touched_sites.add(site_id)
