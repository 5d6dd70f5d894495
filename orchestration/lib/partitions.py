"""The daily partitions of events (by UTC event date)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from leadron.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's partition exists, so events that landed today can be loaded today.
    return dg.DailyPartitionsDefinition(start_date=settings.partition_start.isoformat(), end_offset=1)


def partition_key(day: date) -> str:
    return day.isoformat()
