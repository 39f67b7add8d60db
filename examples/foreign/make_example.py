"""Writes the example dataset's data files: the brand's first-party files and the two networks'
report exports, synthetic but laid out as the portals export them. Run once; the files it
wrote are committed. The catalog files (brand.yaml, mapping.yaml, the policies) are
hand-written. Nothing here runs when a plan is made: planning reads the files.

    python examples/foreign/make_example.py
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
START, DAYS = date(2026, 7, 1), 90
RNG = np.random.default_rng(20261203)

# name, category, price, unit cost, UPC-A body (11 digits), harbor SKU, pinecrest product id
PRODUCTS = [
    (
        "Northwind Cold Brew Coffee 32 oz",
        "beverages",
        6.99,
        3.90,
        "08501234101",
        "412300118",
        "2345601",
    ),
    (
        "Northwind Oat Milk Latte 4-pack",
        "beverages",
        7.49,
        4.60,
        "08501234102",
        "412300125",
        "2345602",
    ),
    (
        "Northwind Sparkling Yerba Mate",
        "beverages",
        2.99,
        1.55,
        "08501234103",
        "412300132",
        "2345603",
    ),
    (
        "Northwind English Breakfast Tea 40 ct",
        "beverages",
        5.49,
        2.70,
        "08501234104",
        "412300149",
        None,
    ),
    ("Northwind Classic Trail Mix", "snacks", 5.99, 3.50, "08501234105", "412300156", "2345605"),
    (
        "Northwind Dark Chocolate Almonds",
        "snacks",
        6.49,
        3.85,
        "08501234106",
        "412300163",
        "2345606",
    ),
    (
        "Northwind Sea Salt Kettle Chips",
        "snacks",
        3.99,
        2.20,
        "08501234107",
        "412300170",
        "2345607",
    ),
    ("Northwind Honey Granola Bars 6 ct", "snacks", 4.49, 2.45, "08501234108", "412300187", None),
]
# Harbor Grocery's markets (Nielsen DMA codes) and their share of its sales.
GEOS = ["803", "807", "819", "820", "825", "862", "753", "839", "770", "790", "813", "828",
        "800", "811", "866", "881"]  # fmt: skip


def upc(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def days() -> list[date]:
    return [START + timedelta(days=i) for i in range(DAYS)]


def response(
    n: int, base: float, iroas0: float, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """Daily spend around `base` and attributed sales on a saturating curve."""
    week = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.2, 1.15])
    spend = base * np.exp(RNG.normal(0, 0.4, n)) * week[np.arange(n) % 7]
    b = 2.5 * base
    sales = iroas0 * b * (1 - np.exp(-spend / b)) * np.exp(RNG.normal(0, noise, n))
    return np.round(spend, 2), np.round(sales, 2)


def harbor_report() -> None:
    """Criteo line-item report, .xlsx, with a preamble and a totals row."""
    book = Workbook()
    ws = book.active
    ws.title = "Line items"
    ws.append(["Criteo Retail Media - Line item report"])
    ws.append([f"Account: Northwind Provisions | Retailer: Harbor Grocery | {START} to "
               f"{START + timedelta(days=DAYS - 1)}"])  # fmt: skip
    ws.append([])
    header = ["date", "campaignId", "campaignName", "campaignTypeName", "lineItemId",
              "lineItemName", "advProductId", "advProductName", "impressions", "clicks",
              "spend", "attributedSales", "attributedUnits", "attributedOrders",
              "roas"]  # fmt: skip
    ws.append(header)
    # campaign id, campaign, campaign type, line item id, line item, daily spend, iROAS
    lines = [
        (
            "881042",
            "NW always-on",
            "Sponsored Products",
            "55120",
            "NW SP all products",
            3200.0,
            5.0,
        ),
        ("881043", "NW awareness", "Onsite Display", "55121", "NW display", 2000.0, 2.4),
    ]
    totals = np.zeros(6)
    rows = []
    for camp, cname, ctype, li, lname, base, iroas in lines:
        for name, _cat, price, _cost, _body, sku, _pid in PRODUCTS:
            scale = RNG.uniform(0.5, 1.5)
            spend, sales = response(DAYS, base * scale / 8, iroas * RNG.uniform(0.8, 1.2))
            cpm = 3.0 if ctype == "Sponsored Products" else 6.0
            imps = np.round(spend / cpm * 1000).astype(int)
            clicks = np.round(imps * RNG.uniform(0.004, 0.012)).astype(int)
            units = np.round(sales / price).astype(int)
            orders = np.round(units / 1.2).astype(int)
            for i, day in enumerate(days()):
                roas = round(sales[i] / spend[i], 2) if spend[i] else 0
                rows.append([day, camp, cname, ctype, li, lname, sku, name, int(imps[i]),
                             int(clicks[i]), float(spend[i]), float(sales[i]), int(units[i]),
                             int(orders[i]), roas])  # fmt: skip
                totals += [imps[i], clicks[i], spend[i], sales[i], units[i], orders[i]]
    # As real exports do: one product the brand no longer lists, and a row sent twice.
    ghost = list(rows[0])
    ghost[6], ghost[7] = "412399999", "Northwind Maple Cold Brew (discontinued)"
    rows.insert(40, ghost)
    rows.insert(100, list(rows[99]))
    for row in rows:
        ws.append(row)
    ws.append(["Total", "", "", "", "", "", "", "", *[round(float(t), 2) for t in totals], ""])
    for (cell,) in ws.iter_rows(min_row=5, min_col=1, max_col=1):
        cell.number_format = "yyyy-mm-dd"
    out = HERE / "raw" / "harbor" / "criteo_line_items_2026-07-01_2026-09-28.xlsx"
    out.parent.mkdir(parents=True, exist_ok=True)
    book.save(out)


def pinecrest_report() -> None:
    """Instacart Ads product report, CSV, with a preamble, money and percent strings, US
    dates and a totals row."""
    out = HERE / "raw" / "pinecrest" / "instacart_products_2026-07-01_2026-09-28.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ["Date", "Campaign", "Campaign ID", "Ad Group", "Product", "Product ID", "UPC",
              "Spend", "Impressions", "Clicks", "CTR", "Attributed Sales",
              "Attributed Quantities", "ROAS"]  # fmt: skip
    rows, tot_spend, tot_sales = [], 0.0, 0.0
    for name, cat, price, _cost, body, _sku, pid in PRODUCTS:
        if pid is None:
            continue
        group = "Beverages" if cat == "beverages" else "Snacks"
        spend, sales = response(DAYS, RNG.uniform(500, 900), RNG.uniform(3.0, 5.5))
        imps = np.round(spend / 2.5 * 1000).astype(int)
        clicks = np.round(imps * RNG.uniform(0.006, 0.015)).astype(int)
        for i, day in enumerate(days()):
            rows.append([f"{day:%m/%d/%Y}", "Northwind Always On", "77120", group, name, pid,
                         upc(body), f"${spend[i]:,.2f}", f"{imps[i]:,}", f"{clicks[i]:,}",
                         f"{100 * clicks[i] / max(imps[i], 1):.2f}%", f"${sales[i]:,.2f}",
                         f"{round(sales[i] / price):,}",
                         f"{sales[i] / spend[i]:.2f}" if spend[i] else "0.00"])  # fmt: skip
            tot_spend += spend[i]
            tot_sales += sales[i]
    rows[10][7] = "-$12.40"  # a credit the portal books as negative spend
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Instacart Ads Manager"])
        w.writerow(["Report: Products", "Account: Northwind Provisions (Pinecrest Market)"])
        w.writerow([f"Date range: {START:%m/%d/%Y} - {START + timedelta(days=DAYS - 1):%m/%d/%Y}"])
        w.writerow([])
        w.writerow(header)
        w.writerows(rows)
        w.writerow(["Total", "", "", "", "", "", "", f"${tot_spend:,.2f}", "", "", "",
                    f"${tot_sales:,.2f}", "", f"{tot_sales / tot_spend:.2f}"])  # fmt: skip


def first_party() -> None:
    folder = HERE / "brands" / "northwind"
    with (folder / "products.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["gtin", "name", "category", "price", "unit_cost", "retailer_id", "item_id"])
        for name, cat, price, cost, body, sku, pid in PRODUCTS:
            w.writerow([upc(body), name, cat, f"${price:.2f}", f"{cost:.2f}", "harbor", sku])
            if pid is not None:
                w.writerow([upc(body), name, cat, f"${price:.2f}", f"{cost:.2f}", "pinecrest", pid])
    book = Workbook()
    ws = book.active
    ws.title = "Stock"
    ws.append(["gtin", "stock_units", "oos_prob", "as_of"])
    for k, (_n, _c, _p, _u, body, _s, _i) in enumerate(PRODUCTS):
        risky = k == 2  # the yerba mate is short: a late shipment
        stock = 300 if risky else int(RNG.integers(4000, 12000))
        oos = 0.72 if risky else round(float(RNG.uniform(0.0, 0.08)), 3)
        ws.append([upc(body), stock, oos, date(2026, 9, 28)])
    book.save(folder / "stock.xlsx")
    with (folder / "promotions.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["retailer_id", "gtin", "start_date", "end_date", "discount_pct"])
        w.writerow(["harbor", upc(PRODUCTS[0][4]), "2026-08-03", "2026-08-09", "20%"])
        w.writerow(["harbor", upc(PRODUCTS[4][4]), "2026-09-07", "2026-09-13", "15%"])
        w.writerow(["pinecrest", upc(PRODUCTS[6][4]), "2026-08-17", "2026-08-23", "25"])
        w.writerow(["harbor", upc(PRODUCTS[1][4]), "2026-10-12", "2026-10-18", "15%"])
    weights = RNG.dirichlet(np.full(len(GEOS), 3.0))
    with (folder / "sellthrough.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "retailer_id", "gtin", "units", "revenue", "geo"])
        for _name, _cat, price, _c, body, _s, pid in PRODUCTS:
            base = RNG.uniform(700, 1400)
            drift = np.cumsum(RNG.normal(0, 0.02, (len(GEOS), DAYS)), axis=1)
            for i, day in enumerate(days()):
                for g, geo in enumerate(GEOS):
                    mean = (
                        base
                        * weights[g]
                        * np.exp(drift[g, i])
                        * (1.15 if day.weekday() >= 4 else 1.0)
                    )
                    units = int(RNG.poisson(mean))
                    w.writerow(
                        [day.isoformat(), "harbor", upc(body), units, f"{units * price:.2f}", geo]
                    )
            if pid is not None:
                for day in days():
                    units = int(RNG.poisson(base * 0.4))
                    w.writerow(
                        [day.isoformat(), "pinecrest", upc(body), units, f"{units * price:.2f}", ""]
                    )


if __name__ == "__main__":
    harbor_report()
    pinecrest_report()
    first_party()
