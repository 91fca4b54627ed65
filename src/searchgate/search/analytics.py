"""Search analytics: what shoppers searched for, per UTC day, area and collection, what
found nothing, and which merchandising rules fired and redirected, read from the query
log's daily counts (``search/querylog.py``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select

from searchgate.audit.encoding import csv_cell
from searchgate.catalog.models import SearchDayRow, SearchQueryDayRow, SearchRuleDayRow
from searchgate.clock import Clock, utc_now
from searchgate.db import Database

PERIODS = (7, 30, 90)
TOP_QUERIES = 50


@dataclass(frozen=True)
class DayFigures:
    day: date
    searches: int
    zero_results: int

    @property
    def zero_share(self) -> float:
        return self.zero_results / self.searches if self.searches else 0.0


@dataclass(frozen=True)
class QueryFigures:
    query: str
    searches: int
    zero_results: int
    # Of a zero-result query: the areas where it found nothing (within the report's).
    areas: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleFigures:
    area: str
    rule: str
    # Searches the rule fired on, and of those the ones it redirected.
    searches: int
    redirects: int


@dataclass(frozen=True)
class Report:
    """The figures of ``days`` days up to today (UTC), of one area and collection or
    of all that the reader may see (``area``/``collection`` None)."""

    days: int
    first: date
    last: date
    area: str | None
    collection: str | None
    series: tuple[DayFigures, ...]
    top: tuple[QueryFigures, ...]
    top_zero: tuple[QueryFigures, ...]
    # The rules that fired, most often first; those that redirected, most redirects first.
    rules: tuple[RuleFigures, ...]
    redirects: tuple[RuleFigures, ...]
    # Days before the first one the retention keeps: shown as no searches.
    kept_from: date

    @property
    def searches(self) -> int:
        return sum(d.searches for d in self.series)

    @property
    def zero_results(self) -> int:
        return sum(d.zero_results for d in self.series)

    @property
    def zero_share(self) -> float:
        return self.zero_results / self.searches if self.searches else 0.0


class SearchAnalytics:
    def __init__(
        self,
        db: Database,
        clock: Clock = utc_now,
        retention_days: int = 90,
        enabled: bool = True,
    ) -> None:
        self.db = db
        self._clock = clock
        self.retention_days = retention_days
        # Whether this server counts searches (the figures of earlier days stay).
        self.enabled = enabled

    def report(
        self,
        days: int,
        *,
        area: str | None = None,
        collection: str | None = None,
        areas: frozenset[str] | None = None,
        limit: int = TOP_QUERIES,
    ) -> Report:
        """``areas``: the areas the reader may see (None: all); ``area`` must be one."""
        if days not in PERIODS:
            raise ValueError(f"days must be one of {PERIODS}")
        last = self._clock().date()
        first = last - timedelta(days=days - 1)
        with self.db.read() as s:
            where = self._where(SearchDayRow, first, area, collection, areas)
            per_day = {
                d: (int(n or 0), int(z or 0))
                for d, n, z in s.execute(
                    select(
                        SearchDayRow.day,
                        func.sum(SearchDayRow.searches),
                        func.sum(SearchDayRow.zero_results),
                    )
                    .where(*where)
                    .group_by(SearchDayRow.day)
                ).all()
            }
            qwhere = self._where(SearchQueryDayRow, first, area, collection, areas)
            searches = func.sum(SearchQueryDayRow.searches)
            zeros = func.sum(SearchQueryDayRow.zero_results)
            grouped = (
                select(SearchQueryDayRow.query, searches, zeros)
                .where(*qwhere)
                .group_by(SearchQueryDayRow.query)
            )
            top = s.execute(
                grouped.order_by(searches.desc(), SearchQueryDayRow.query).limit(limit)
            ).all()
            top_zero = s.execute(
                grouped.having(zeros > 0)
                .order_by(zeros.desc(), SearchQueryDayRow.query)
                .limit(limit)
            ).all()
            zero_areas: dict[str, list[str]] = {}
            if top_zero:
                for q, a in s.execute(
                    select(SearchQueryDayRow.query, SearchQueryDayRow.area)
                    .where(*qwhere, SearchQueryDayRow.query.in_([r[0] for r in top_zero]))
                    .group_by(SearchQueryDayRow.query, SearchQueryDayRow.area)
                    .having(zeros > 0)
                    .order_by(SearchQueryDayRow.area)
                ).all():
                    zero_areas.setdefault(str(q), []).append(str(a))
            rwhere = self._where(SearchRuleDayRow, first, area, collection, areas)
            fired = func.sum(SearchRuleDayRow.searches)
            redirected = func.sum(SearchRuleDayRow.redirects)
            by_rule = (
                select(SearchRuleDayRow.area, SearchRuleDayRow.rule, fired, redirected)
                .where(*rwhere)
                .group_by(SearchRuleDayRow.area, SearchRuleDayRow.rule)
            )
            order = (SearchRuleDayRow.area, SearchRuleDayRow.rule)
            rules = s.execute(by_rule.order_by(fired.desc(), *order).limit(limit)).all()
            redirects = s.execute(
                by_rule.having(redirected > 0).order_by(redirected.desc(), *order).limit(limit)
            ).all()
        series = []
        for i in range(days):
            day = first + timedelta(days=i)
            n, z = per_day.get(_as_date(day), (0, 0))
            series.append(DayFigures(day, n, z))
        return Report(
            days=days,
            first=first,
            last=last,
            area=area,
            collection=collection,
            series=tuple(series),
            top=_queries(top),
            top_zero=tuple(
                QueryFigures(
                    q.query, q.searches, q.zero_results, tuple(zero_areas.get(q.query, ()))
                )
                for q in _queries(top_zero)
            ),
            rules=_rules(rules),
            redirects=_rules(redirects),
            kept_from=last - timedelta(days=self.retention_days - 1),
        )

    @staticmethod
    def _where(
        model: type[SearchDayRow] | type[SearchQueryDayRow] | type[SearchRuleDayRow],
        first: date,
        area: str | None,
        collection: str | None,
        areas: frozenset[str] | None,
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [model.day >= first]
        if area is not None:
            where.append(model.area == area)
        if areas is not None:
            where.append(model.area.in_(sorted(areas)))
        if collection is not None:
            where.append(model.collection == collection)
        return where


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _queries(rows: Iterable[Any]) -> tuple[QueryFigures, ...]:
    return tuple(QueryFigures(str(q), int(n or 0), int(z or 0)) for q, n, z in rows)


def _rules(rows: Iterable[Any]) -> tuple[RuleFigures, ...]:
    return tuple(RuleFigures(str(a), str(r), int(n or 0), int(z or 0)) for a, r, n, z in rows)


def report_csv(report: Report) -> str:
    """The report's figures as CSV: one section per table, each with its own header,
    separated by an empty line (what a spreadsheet opens as it is)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["period", "area", "collection", "first day", "last day"])
    w.writerow(
        [
            f"{report.days} days",
            csv_cell(report.area or "all"),
            csv_cell(report.collection or "all"),
            report.first.isoformat(),
            report.last.isoformat(),
        ]
    )
    w.writerow([])
    w.writerow(["day", "searches", "zero results", "zero-result share"])
    for d in report.series:
        w.writerow([d.day.isoformat(), d.searches, d.zero_results, f"{d.zero_share:.4f}"])
    w.writerow([])
    w.writerow(["top query", "searches", "zero results"])
    for q in report.top:
        w.writerow([csv_cell(q.query), q.searches, q.zero_results])
    w.writerow([])
    w.writerow(["zero-result query", "zero results", "searches"])
    for q in report.top_zero:
        w.writerow([csv_cell(q.query), q.zero_results, q.searches])
    w.writerow([])
    w.writerow(["rule that fired", "area", "searches", "redirected"])
    for r in report.rules:
        w.writerow([csv_cell(r.rule), csv_cell(r.area), r.searches, r.redirects])
    w.writerow([])
    w.writerow(["redirect rule", "area", "redirected searches"])
    for r in report.redirects:
        w.writerow([csv_cell(r.rule), csv_cell(r.area), r.redirects])
    return out.getvalue()
