"""The rows a report's count opens (docs/API.md "Reports", drill-down): cylinders, fills,
alerts, customers and events, each with one column set, whichever report drills into them.

A report's ``drill`` function decides *which* rows (the WHERE that reproduces one cell of
its aggregate); this module decides *how they look*, so a cylinder list opened from
``holdings`` and one opened from ``abnormal-cylinders`` are the same table and the same
export. Each builder takes the conditions (already holding the role scope: build them with
``ReportContext.where``) and returns a ``DrillQuery``; the frame pages or streams it.

Customers are shown without phone or address (docs/SECURITY.md: a report drill-down is a
list for counting, not a contact sheet); the ID number only as the masked form stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.api.report_frame import Column, DrillQuery, ReportContext
from server.db.compliance import ComplianceBounds, compliance_case
from server.kernel.scope import Sql

__all__ = ["alerts", "customers", "cylinders", "events", "fills"]


def _and(where: Sequence[str]) -> str:
    return " AND ".join(where) if where else "true"


CYLINDER_COLUMNS = (
    Column("id", "档案号", "ID", "code"),
    Column("tag", "电子标签", "Tag", "code"),
    Column("stamp", "钢印号", "Stamp no.", "code"),
    Column("owner_code", "产权单位代码", "Owner code", "code"),
    Column("owner_name", "产权单位", "Owner", "text"),
    Column("spec", "型号", "Model", "code"),
    Column("district_code", "所在区县", "District", "code"),
    Column("status", "状态", "Status", "code"),
    Column("compliance", "合规状态", "Compliance", "code"),
    Column("manufacture_date", "制造日期", "Made", "date"),
    Column("next_inspection_date", "下次检验日期", "Next inspection", "date"),
    Column("scrap_date", "报废日期", "Scrap date", "date"),
)


def cylinders(ctx: ReportContext, q: Sql, where: Sequence[str]) -> DrillQuery:
    """Cylinders ``c`` (joined to their owner ``o``) matching *where*."""
    case = compliance_case("c", q, ComplianceBounds.of(ctx.f.today, ctx.settings.dates))
    return DrillQuery(
        select=f"""c.id, c.tag, c.stamp, o.code AS owner_code, o.name AS owner_name, c.spec,
            c.district_code, c.status, {case} AS compliance, c.manufacture_date,
            c.next_inspection_date, c.scrap_date""",
        from_where=f"cylinders c JOIN companies o ON o.id = c.owner_company_id WHERE {_and(where)}",
        order="c.id",
        q=q,
        columns=CYLINDER_COLUMNS,
    )


FILL_COLUMNS = (
    Column("ts", "充装时间", "Filled at", "date"),
    Column("tag", "电子标签", "Tag", "code"),
    Column("spec", "型号", "Model", "code"),
    Column("station_code", "充装站代码", "Station code", "code"),
    Column("station_name", "充装站", "Station", "text"),
    Column("company_name", "充装单位", "Company", "text"),
    Column("district_code", "区县", "District", "code"),
    Column("net_kg", "净重(kg)", "Net (kg)", "kg"),
    Column("result", "结果", "Result", "code"),
    Column("assessment", "评定", "Assessment", "code"),
    Column("operator", "充装人员", "Operator", "text"),
)


def fills(ctx: ReportContext, q: Sql, where: Sequence[str]) -> DrillQuery:
    """Fills ``f`` matching *where* (put the period on ``f.ts``: it prunes partitions)."""
    del ctx
    return DrillQuery(
        select="""f.ts, f.tag, f.spec, s.code AS station_code, s.name AS station_name,
            co.name AS company_name, f.district_code, f.net_kg, f.result, f.assessment,
            f.operator""",
        from_where=f"""fills f LEFT JOIN sites s ON s.id = f.station_id
            LEFT JOIN companies co ON co.id = f.company_id WHERE {_and(where)}""",
        order="f.ts, f.msg_id",
        q=q,
        columns=FILL_COLUMNS,
    )


ALERT_COLUMNS = (
    Column("id", "编号", "ID", "code"),
    Column("kind", "类型", "Kind", "code"),
    Column("severity", "级别", "Severity", "code"),
    Column("state", "状态", "State", "code"),
    Column("subject_id", "对象", "Subject", "code"),
    Column("company_name", "企业", "Company", "text"),
    Column("site_code", "站点代码", "Site code", "code"),
    Column("district_code", "区县", "District", "code"),
    Column("count", "次数", "Count", "count"),
    Column("first_at", "首次", "First", "date"),
    Column("last_at", "最近", "Last", "date"),
)


def alerts(ctx: ReportContext, q: Sql, where: Sequence[str]) -> DrillQuery:
    """Alerts ``a`` matching *where*."""
    del ctx
    return DrillQuery(
        select="""a.id, a.kind, a.severity, a.state, a.subject_id, co.name AS company_name,
            s.code AS site_code, a.district_code, a.count, a.first_at, a.last_at""",
        from_where=f"""alerts a LEFT JOIN companies co ON co.id = a.company_id
            LEFT JOIN sites s ON s.id = a.site_id WHERE {_and(where)}""",
        order="a.last_at DESC, a.id",
        q=q,
        columns=ALERT_COLUMNS,
    )


CUSTOMER_COLUMNS = (
    Column("id", "编号", "ID", "code"),
    Column("account_no", "用户号", "Account", "code"),
    Column("name", "用户名称", "Name", "text"),
    Column("id_number_masked", "证件号(脱敏)", "ID no. (masked)", "code"),
    Column("kind", "用户类型", "Kind", "code"),
    Column("company_name", "供气企业", "Company", "text"),
    Column("district_code", "区县", "District", "code"),
    Column("opened_on", "开户日期", "Opened", "date"),
)


def customers(ctx: ReportContext, q: Sql, where: Sequence[str]) -> DrillQuery:
    """Customers ``cu`` matching *where*."""
    del ctx
    return DrillQuery(
        select="""cu.id, cu.account_no, cu.name, cu.id_number_masked, cu.kind,
            co.name AS company_name, cu.district_code, cu.opened_on""",
        from_where=f"customers cu JOIN companies co ON co.id = cu.company_id WHERE {_and(where)}",
        order="cu.opened_on, cu.id",
        q=q,
        columns=CUSTOMER_COLUMNS,
    )


EVENT_COLUMNS = (
    Column("ts", "时间", "Time", "date"),
    Column("kind", "事件", "Event", "code"),
    Column("tag", "电子标签", "Tag", "code"),
    Column("site_code", "站点代码", "Site code", "code"),
    Column("site_name", "站点", "Site", "text"),
    Column("company_name", "企业", "Company", "text"),
    Column("district_code", "区县", "District", "code"),
    Column("device_id", "设备", "Device", "code"),
    Column("reasons", "原因", "Reasons", "text"),
)


def events(ctx: ReportContext, q: Sql, where: Sequence[str]) -> DrillQuery:
    """Trajectory events ``e`` matching *where* (put the period on ``e.ts``)."""
    del ctx
    return DrillQuery(
        select="""e.ts, e.kind, e.tag, s.code AS site_code, s.name AS site_name,
            co.name AS company_name, e.district_code, e.device_id,
            CASE WHEN jsonb_typeof(e.details->'reasons') = 'array'
                 THEN (SELECT string_agg(r, ',') FROM jsonb_array_elements_text(e.details->'reasons') r)
            END AS reasons""",
        from_where=f"""events e LEFT JOIN sites s ON s.id = e.site_id
            LEFT JOIN companies co ON co.id = e.company_id WHERE {_and(where)}""",
        order="e.ts, e.msg_id",
        q=q,
        columns=EVENT_COLUMNS,
    )
