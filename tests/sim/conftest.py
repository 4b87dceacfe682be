"""A synthetic city for the simulator's tests: no database needed for the pure parts.

Two companies, each with a licensed station (two guns), a store, handhelds, a vehicle,
customers and cylinders; plus overdue and scrapped cylinders for illegal attempts. The
ids carry a per-session prefix so an end-to-end run on the shared broker cannot be
mistaken for another test's devices.
"""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from device_sim.behaviour import Rules
from device_sim.world import City, Customer, Cylinder, Device, Site

PREFIX = f"SIMT{secrets.token_hex(2).upper()}"


def make_city(prefix: str = PREFIX, cylinders_per_company: int = 60) -> City:
    today = dt.date(2026, 6, 1)
    stations, stores, guns, hhs, vehicles, customers, legal = [], [], [], [], [], [], []
    for co, (lat, lon) in ((1, (34.80, 113.65)), (2, (34.70, 113.62))):
        st = Site(f"{prefix}-STA{co}", "filling_station", co, lat, lon, co)
        stations.append(st)
        store = Site(f"{prefix}-STO{co}", "store", co, lat + 0.02, lon + 0.03, 10 + co)
        stores.append(store)
        guns += [Device(f"{prefix}-GUN{co}{g}", "gun", co, st.code) for g in (1, 2)]
        hhs.append(Device(f"{prefix}-HH{co}", "handheld", co, store.code))
        hhs.append(Device(f"{prefix}-HHV{co}", "handheld", co, st.code))
        vehicles.append(Device(f"{prefix}-VEH{co}", "vehicle", co, st.code))
        customers += [
            Customer(f"{prefix}-C{co}-{i:03d}", co, lat + 0.001 * i, lon - 0.001 * i)
            for i in range(1, 21)
        ]
        legal += [
            Cylinder(
                f"{prefix}-T{co}-{i:04d}",
                co,
                "YSP35.5" if i % 5 else "YSP12",
                15.5 if i % 5 else 6.0,
                "in_service",
                today + dt.timedelta(days=400),
                today + dt.timedelta(days=2000),
                True,
                lat,
                lon,
            )
            for i in range(cylinders_per_company)
        ]
    overdue = [
        Cylinder(
            f"{prefix}-OVD-{i}",
            1,
            "YSP35.5",
            15.5,
            "in_service",
            today - dt.timedelta(days=3),
            today + dt.timedelta(days=900),
        )
        for i in range(5)
    ]
    scrapped = [
        Cylinder(
            f"{prefix}-SCR-{i}",
            2,
            "YSP35.5",
            15.5,
            "scrapped",
            today + dt.timedelta(days=100),
            today + dt.timedelta(days=900),
        )
        for i in range(5)
    ]
    return City(
        stations, stores, guns, hhs, vehicles, customers, legal, overdue, scrapped, today=today
    )


@pytest.fixture
def city() -> City:
    return make_city()


@pytest.fixture
def rules(settings: object) -> Rules:
    return Rules.from_settings(settings)
